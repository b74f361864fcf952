// The initramfs for a kernel: the compiled init, its build facts, the storage module closure of
// the kernel's modules (toolchain/module_closure.ts) and the table the init reads. Packing needs
// Node alone: the `storage-init build` command does it with an installed init.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { writeInitramfs } from "./initramfs.mjs";
import { buildModuleTable, hardwareModules, MODULE_GROUPS, parseKernelModules } from "./module_closure.ts";
import { distName } from "./arches.ts";
import { kib, step } from "./tools.mjs";

/** The one kernel release unpacked under `kernelDir`/lib/modules; throws when there is not exactly one. */
export function kernelRelease(kernelDir) {
  const base = join(kernelDir, "lib", "modules");
  if (!existsSync(base)) throw new Error(`${base}: no such directory (expected a kernel's modules tree)`);
  const versions = readdirSync(base).sort();
  if (versions.length !== 1)
    throw new Error(`${base} holds ${versions.length} kernel releases (${versions.join(", ")}); expected one`);
  return versions[0];
}

/** The module index of depmod's files in `dir` (lib/modules/<release>); a missing file reads as empty. */
export function readKernelModules(dir) {
  const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
  return parseKernelModules(
    read("modules.dep"),
    read("modules.alias"),
    read("modules.builtin"),
    read("modules.softdep"),
    read("modules.builtin.modinfo"),
  );
}

/** The modules directory (lib/modules/<release>) of the kernel unpacked in `kernelDir`. */
export function modulesDirOf(kernelDir) {
  return join(kernelDir, "lib", "modules", kernelRelease(kernelDir));
}

/**
 * Initramfs entries for the storage modules of a kernel's modules directory `dir`
 * (lib/modules/<release>, with depmod's files), its release the directory's name.
 */
export function moduleEntries(dir, { storage = ["all"], groups = MODULE_GROUPS, arch = "x86-64" } = {}) {
  const hardware = hardwareModules(storage, arch);
  const version = basename(dir);
  if (!existsSync(dir))
    throw new Error(`${dir}: no such directory (expected a kernel's modules, lib/modules/<release>)`);
  if (!existsSync(join(dir, "modules.dep"))) throw new Error(`${dir}/modules.dep is missing: run 'depmod ${version}'`);
  const t = buildModuleTable(readKernelModules(dir), hardware, groups, version);
  if (t.missing.length) console.log(`build: not in this kernel (skipped): ${t.missing.join(", ")}`);
  const entries = [{ path: "modules/table", type: "file", data: Buffer.from(t.text) }];
  let bytes = 0;
  for (const f of t.files) {
    const data = readFileSync(join(dir, f.path));
    bytes += data.length;
    entries.push({ path: `modules/${f.file}`, type: "file", data });
  }
  return { entries, count: t.files.length, bytes, version, table: t.text };
}

/** Where the initramfs records the build's policy facts (JSON: arch, rootPolicy, minVersion, certificates). */
export const BUILD_FACTS_PATH = "etc/storage-init/build.json";

/** The build facts buildInit() writes beside the init `binary`, for packing it later (packInitramfs()). */
export function factsPathOf(binary) {
  return `${binary}.json`;
}

/**
 * The build facts of the init `binary`, from factsPathOf(binary).
 * @param {string} binary
 * @returns {{ arch: string, rootPolicy: string, minVersion: string, certificates: string }}
 */
export function readBuildFacts(binary) {
  const file = factsPathOf(binary);
  if (!existsSync(binary)) throw new Error(`${binary}: no such file (the init; 'node build.mjs' compiles it)`);
  if (!existsSync(file)) throw new Error(`${file} is missing: the build facts 'node build.mjs' writes beside the init`);
  const f = JSON.parse(readFileSync(file, "utf8"));
  for (const key of ["arch", "rootPolicy", "minVersion", "certificates"])
    if (typeof f[key] !== "string") throw new Error(`${file}: "${key}" is not a string`);
  return f;
}

/**
 * The initramfs buildInit() writes in `out` for `arch`: initramfs[-<arch>]-<classes>.cpio.gz with
 * the module closure of the `storage` classes, initramfs[-<arch>].cpio.gz without modules.
 * @param {string} out
 * @param {string} arch
 * @param {string[] | undefined} storage
 */
export function initramfsPath(out, arch, storage) {
  return join(out, distName(arch, "initramfs", storage === undefined ? ".cpio.gz" : `-${storage.join("+")}.cpio.gz`));
}

/**
 * Packs the compiled init `init` into the initramfs `out`, with its build facts (factsPathOf())
 * and, given a kernel's modules directory (lib/modules/<release>), the module closure of the
 * `storage` classes for the init's architecture.
 * @param {{ init: string, out: string, modulesDir?: string, storage?: string[] }} options
 */
export async function packInitramfs({ init, out, modulesDir, storage = ["all"] }) {
  const facts = readBuildFacts(init);
  // What the build decided, for `storage-init check --uki` (the init has it compiled in).
  const factsEntry = {
    path: BUILD_FACTS_PATH,
    type: "file",
    mode: 0o644,
    data: Buffer.from(JSON.stringify(facts) + "\n"),
  };
  /** @type {Array<object>} */
  let extra = [];
  if (modulesDir) {
    await step("storage module closure", async () => {
      const r = moduleEntries(modulesDir, { storage, arch: facts.arch });
      extra = r.entries;
      return `${r.count} modules for ${storage.join(",")}, ${kib(r.bytes)} (${r.version})`;
    });
  }
  await step("initramfs", async () => {
    const r = writeInitramfs(init, out, [...extra, factsEntry]);
    return `-> ${relative(process.cwd(), r.path)} ${kib(r.size)} (${r.entries} entries, ${kib(r.rawSize)} uncompressed)`;
  });
  return { facts, size: statSync(out).size };
}
