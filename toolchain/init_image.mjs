// The initramfs for a kernel: the compiled init, its build facts, the storage module closure of
// the kernel's modules (toolchain/module_closure.ts) and the table the init reads. Packing needs
// Node, and xz or zstd where the kernel's modules are compressed: the `storage-init build`
// command does it with an installed init.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import { cpioArchive, writeInitramfs } from "./initramfs.mjs";
import { buildModuleTable, hardwareModules, MODULE_GROUPS, parseKernelModules } from "./module_closure.ts";
import { distName } from "./arches.ts";
import { isVpickDir, MEMORY_DDI_DIR, memoryDdiPath } from "../lib/facts.ts";
import { kib, requireTool, step } from "./tools.mjs";

/**
 * Where a kernel tree unpacked in `kernelDir` keeps its modules: lib/modules, or usr/lib/modules
 * (Debian 13's packages, made for merged /usr).
 */
export function modulesBase(kernelDir) {
  const usr = join(kernelDir, "usr", "lib", "modules");
  return !existsSync(join(kernelDir, "lib", "modules")) && existsSync(usr) ? usr : join(kernelDir, "lib", "modules");
}

/** The one kernel release unpacked under `kernelDir`/[usr/]lib/modules; throws when there is not exactly one. */
export function kernelRelease(kernelDir) {
  const base = modulesBase(kernelDir);
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

/** The modules directory ([usr/]lib/modules/<release>) of the kernel unpacked in `kernelDir`. */
export function modulesDirOf(kernelDir) {
  return join(modulesBase(kernelDir), kernelRelease(kernelDir));
}

/**
 * How a compressed module is decompressed at build time, by its file's ending: gzip by Node,
 * xz and zstd by their tools. Debian 13's kernel ships its modules xz-compressed; the kernel
 * could decompress them itself (finit_module with MODULE_INIT_COMPRESSED_FILE), but under QEMU
 * that made the boot from /init to the root's init 0.6 s slower (1.96 s against 1.36 s, the
 * medians of three boots each), and the gzip-compressed initramfs only 214 KiB larger for
 * virtio's closure. A module's signature is appended to the uncompressed module, and stays.
 */
const DECOMPRESSORS = [
  { ext: ".gz", run: (data) => gunzipSync(data) },
  { ext: ".xz", run: (data) => toolOutput("xz", data) },
  { ext: ".zst", run: (data) => toolOutput("zstd", data) },
];

/** What `tool -dc` makes of `data`. */
function toolOutput(tool, data) {
  requireTool(tool);
  return execFileSync(tool, ["-dc"], { input: data, maxBuffer: 1 << 30 });
}

/** A module's file name and content, decompressed where its name says it is compressed. */
export function decompressedModule(file, data) {
  const d = DECOMPRESSORS.find((x) => file.endsWith(`.ko${x.ext}`));
  return d === undefined ? { file, data } : { file: file.slice(0, -d.ext.length), data: d.run(data) };
}

/**
 * Initramfs entries for the storage modules of a kernel's modules directory `dir`
 * (lib/modules/<release>, with depmod's files), its release the directory's name. Compressed
 * modules go in decompressed (decompressedModule()).
 */
export function moduleEntries(dir, { storage = ["all"], groups = MODULE_GROUPS, arch = "x86-64" } = {}) {
  const hardware = hardwareModules(storage, arch);
  const version = basename(dir);
  if (!existsSync(dir))
    throw new Error(`${dir}: no such directory (expected a kernel's modules, lib/modules/<release>)`);
  if (!existsSync(join(dir, "modules.dep"))) {
    // depmod -b takes the tree's root, above [usr/]lib/modules/<release>.
    const root = /^(.*?)\/(?:usr\/)?lib\/modules\/[^/]+$/.exec(dir)?.[1] || "/";
    throw new Error(`${dir}/modules.dep is missing: run 'depmod -b ${root} ${version}'`);
  }
  const t = buildModuleTable(readKernelModules(dir), hardware, groups, version);
  if (t.missing.length) console.log(`build: not in this kernel (skipped): ${t.missing.join(", ")}`);
  let table = t.text;
  const entries = [];
  let bytes = 0;
  for (const f of t.files) {
    const m = decompressedModule(f.file, readFileSync(join(dir, f.path)));
    // The table's line of a module: "m <name> <file> <dependencies>".
    if (m.file !== f.file) table = table.replace(`m ${f.name} ${f.file} `, `m ${f.name} ${m.file} `);
    bytes += m.data.length;
    entries.push({ path: `modules/${m.file}`, type: "file", data: m.data });
  }
  entries.unshift({ path: "modules/table", type: "file", data: Buffer.from(table) });
  return { entries, count: t.files.length, bytes, version, table };
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

/**
 * Where the DDI `file` lies in memory for a boot whose storage_init.ddi= names `ddiPath` on the
 * ESP: MEMORY_DDI_DIR and memoryDdiPath() (the path's last component), or in a vpick directory
 * (`NAME.v`, `NAME.v/`) under its own file name, which must then be a vpick name (the build's
 * check, checkMemoryDdi(), reads the directory as the boot does).
 * @param {string} file
 * @param {string} ddiPath
 */
export function memoryPathOf(file, ddiPath) {
  const m = memoryDdiPath(ddiPath);
  if (!isVpickDir(m)) return MEMORY_DDI_DIR + m;
  return MEMORY_DDI_DIR + (m.endsWith("/") ? m : `${m}/`) + basename(file);
}

/**
 * An initramfs archive holding only the DDI `file` at `at` (memoryPathOf()), uncompressed: the
 * kernel unpacks it after the init's own archive (the UKI's `.initrd` is the two concatenated, as
 * a boot loader's second initrd is), and a DDI's erofs and hash tree gain little from gzip,
 * which would cost a decompression at every boot. Returns the archive's bytes.
 * @param {string} file
 * @param {string} at
 */
export function ddiArchive(file, at) {
  const parts = at.split("/").filter((x) => x !== "");
  /** @type {import("./initramfs.mjs").CpioEntry[]} */
  const entries = [];
  for (let i = 1; i < parts.length; i++) entries.push({ path: parts.slice(0, i).join("/"), type: "dir" });
  entries.push({ path: parts.join("/"), type: "file", mode: 0o444, data: readFileSync(file) });
  return cpioArchive(entries);
}

/**
 * The initrd `out`: the initramfs `initramfs` and after it `archive` (ddiArchive()), on a 4-byte
 * boundary, where the kernel's unpacker looks for a cpio header.
 * @param {string} initramfs
 * @param {Uint8Array} archive
 * @param {string} out
 */
export function initrdWithDdi(initramfs, archive, out) {
  const init = readFileSync(initramfs);
  writeFileSync(out, Buffer.concat([init, Buffer.alloc((4 - (init.length % 4)) % 4), archive]));
}
