/** Shared test helpers: real-tool fixtures, prerequisites, a deterministic random source, a GPT writer. */
import test from "ava";
import type { ExecutionContext } from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import { build } from "esbuild";
import { sgdiskPartition } from "../qemu/images.js";
import { BUILD_FACTS_PATH } from "../toolchain/init_image.mjs";
import { readCpio } from "../toolchain/initramfs.mjs";
import { buildDefines } from "../toolchain/native.mjs";
import { ROOT, run } from "../toolchain/tools.mjs";
export { rng } from "./rng.js";
export { writeGpt } from "./gpt_writer.js";
export type { GptPart } from "./gpt_writer.js";
export { run };

/**
 * `test` when `artifact` exists; otherwise, outside CI, a skip whose title says what to run
 * first. Under CI a missing artifact is an error: CI builds everything before the tests.
 */
export function testIfBuilt(artifact: string, build: string): typeof test {
  if (existsSync(artifact)) return test;
  const why = `${relative(ROOT, artifact)} is missing: run '${build}' first`;
  if (process.env.CI) throw new Error(why);
  const skip = (title: string, ...rest: unknown[]) =>
    (test.skip as (t: string, ...r: unknown[]) => void)(`${title} (skipped: ${why})`, ...rest);
  return skip as unknown as typeof test;
}

/** Runs fn in a fresh temporary directory, removed afterwards. */
export function inTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "si-test-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A GPT disk image written by sgdisk (512-byte sectors). parts: [type, uuid, name, firstLba, lastLba]. */
export function sgdiskImage(sizeMiB: number, parts: Array<[string, string, string, number, number]>): Uint8Array {
  return inTempDir((dir) => {
    const f = join(dir, "disk.img");
    run("truncate", ["-s", `${sizeMiB}M`, f]);
    sgdiskPartition(
      f,
      parts.map(([type, uuid, name, first, last]) => ({ type, uuid, name, first, last })),
      "11111111-2222-3333-4444-555555555555",
    );
    return new Uint8Array(readFileSync(f));
  });
}

export function reader(b: Uint8Array): (offset: number, length: number) => Uint8Array {
  return (offset, length) => b.slice(offset, Math.min(b.length, offset + length));
}

/**
 * The module `entry` (a path from the repository's root) bundled by esbuild with the build facts
 * toolchain/native.mjs's buildDefines() gives for (`rootPolicy`, `minVersion`, `certificates`),
 * as the native build writes them in, and imported: a test of what a build with those options does.
 */
export async function importBuiltWith<T>(
  entry: string,
  rootPolicy: string,
  minVersion: string,
  certificates: string[],
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "si-built-"));
  try {
    const out = join(dir, "bundle.mjs");
    const facts: Record<string, string> = buildDefines("x86-64", rootPolicy, minVersion, certificates);
    const define: Record<string, string> = {};
    for (const key of ["STORAGE_INIT_ROOT_POLICY", "STORAGE_INIT_MIN_VERSION", "STORAGE_INIT_CERTIFICATES"])
      define[key] = JSON.stringify(facts[key]);
    await build({
      entryPoints: [join(ROOT, entry)],
      bundle: true,
      format: "esm",
      outfile: out,
      define,
      logLevel: "silent",
    });
    return (await import(out)) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Asserts that `initrd` is a proto-initrd `storage-init build` packed with `--storage virtio`:
 * the init `init`, its build facts, and virtio's modules alone.
 */
export function isProtoInitrd(t: ExecutionContext, initrd: Uint8Array, init: string): void {
  const files = readCpio(gunzipSync(initrd));
  const data = (path: string) => Buffer.from(files.find((e) => e.path === path)?.data ?? "");
  t.deepEqual(data("init"), readFileSync(init), "the init, as built");
  t.is(JSON.parse(data(BUILD_FACTS_PATH).toString()).arch, "x86-64");
  const table = data("modules/table").toString();
  t.regex(table, /virtio_blk/);
  t.notRegex(table, /\bnvme\b/, "--storage virtio: no NVMe driver");
  const modules = files.filter((e) => e.path.startsWith("modules/") && e.path !== "modules/table");
  t.deepEqual(
    modules.filter((e) => !e.path.endsWith(".ko")).map((e) => e.path),
    [],
    "modules decompressed at build time",
  );
}
