// The init and its initramfs for a kernel: the native binary, the storage module closure of
// the kernel's modules (toolchain/module_closure.ts) and the table the init reads.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { writeInitramfs } from "./initramfs.mjs";
import { buildModuleTable, hardwareModules, MODULE_GROUPS, parseKernelModules } from "./module_closure.ts";
import { distName } from "./arches.ts";
import { compileNative } from "./native.mjs";
import { DIST, kib, ROOT, step } from "./tools.mjs";

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

/** Initramfs entries for the storage modules of the kernel unpacked in `kernelDir`. */
export function moduleEntries(kernelDir, { storage = ["all"], groups = MODULE_GROUPS, arch = "x86-64" } = {}) {
  const hardware = hardwareModules(storage, arch);
  const version = kernelRelease(kernelDir);
  const dir = join(kernelDir, "lib", "modules", version);
  if (!existsSync(join(dir, "modules.dep")))
    throw new Error(`${dir}/modules.dep is missing: run 'depmod -b ${kernelDir} ${version}'`);
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
 * The init and an initramfs in `out` (storage-init[-<arch>], initramfsPath()): with the storage
 * module closure of the kernel in `kernelDir` for the `storage` classes, or without modules when
 * no kernel is given.
 * @param {{ kernelDir?: string, storage?: string[], out?: string, arch?: string, rootPolicy?: string, minVersion?: string, certificates?: string[] }} [options]
 */
export async function buildInit({
  kernelDir,
  storage = ["all"],
  out = DIST,
  arch = "x86-64",
  rootPolicy = "verity",
  minVersion = "",
  certificates = [],
} = {}) {
  const binary = await compileNative(join(ROOT, "runtime", "init.ts"), join(out, distName(arch, "storage-init")), {
    arch,
    rootPolicy,
    minVersion,
    certificates,
  });
  // What the build decided, for `storage-init check --uki` (the init has it compiled in).
  /** @type {Array<object>} */
  let extra = [];
  const facts = { arch, rootPolicy, minVersion, certificates: certificates.join(",") };
  const factsEntry = {
    path: BUILD_FACTS_PATH,
    type: "file",
    mode: 0o644,
    data: Buffer.from(JSON.stringify(facts) + "\n"),
  };
  if (kernelDir) {
    await step("storage module closure", async () => {
      const r = moduleEntries(kernelDir, { storage, arch });
      extra = r.entries;
      return `${r.count} modules for ${storage.join(",")}, ${kib(r.bytes)} (${r.version})`;
    });
  }
  const initramfs = initramfsPath(out, arch, kernelDir ? storage : undefined);
  await step("initramfs", async () => {
    const r = writeInitramfs(binary, initramfs, [...extra, factsEntry]);
    return `-> ${relative(ROOT, r.path)} ${kib(r.size)} (${r.entries} entries, ${kib(r.rawSize)} uncompressed)`;
  });
  return { binary, initramfs, binarySize: statSync(binary).size, initramfsSize: statSync(initramfs).size };
}
