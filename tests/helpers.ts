/** Shared test helpers: real-tool fixtures, a deterministic random source, a GPT writer. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
export { writeGpt } from "./gpt_writer.js";
export type { GptPart } from "./gpt_writer.js";

export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], cwd });
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
    const args = ["--clear"];
    parts.forEach(([type, uuid, name, first, last], i) => {
      args.push(`--new=${i + 1}:${first}:${last}`, `--typecode=${i + 1}:${type}`, `--partition-guid=${i + 1}:${uuid}`, `--change-name=${i + 1}:${name}`);
    });
    run("sgdisk", [...args, "--disk-guid=11111111-2222-3333-4444-555555555555", f]);
    return new Uint8Array(readFileSync(f));
  });
}

/** A deterministic generator (LCG), so that a failing random input can be reproduced. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

export function reader(b: Uint8Array): (offset: number, length: number) => Uint8Array {
  return (offset, length) => b.slice(offset, Math.min(b.length, offset + length));
}

/** What `fn` threw (our error classes are not Error subclasses, see kernel.ts), or fails the test. */
export function thrown(t: { fail: (m: string) => void }, fn: () => unknown): { message: string } {
  try {
    fn();
  } catch (e) {
    return e as { message: string };
  }
  t.fail("expected an exception");
  return { message: "" };
}
