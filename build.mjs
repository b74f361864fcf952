#!/usr/bin/env node
// Builds storage-init: typed TypeScript bundle (tsbundle.mjs) -> porffor C -> static musl
// binary (-Oz: the init does little computing; link-time optimization, which drops what
// porffor's dispatch tables reference but nothing calls; no unwind tables, which nothing reads;
// no page-aligned padding between code and data, nor before the end of RELRO, which musl
// protects only in its dynamic linker, not in a static binary) -> initramfs.
//
//   node build.mjs                      the init binary and an initramfs without modules
//   node build.mjs --kernel DIR [--storage virtio,nvme,sata,usb,mmc|all]
//                                       ... with the storage module closure of the kernel
//                                       unpacked in DIR (DIR/lib/modules/<version>), for the
//                                       storage classes given (default all)
//   node build.mjs tests                builds the init and bundles tests/**/*.test.ts for ava
//
// Also a library: qemu/ and tests/ import compileNative(), writeInitramfs() and friends.
import { build as esbuild } from "esbuild";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { bundleTypeScript } from "./tsbundle.mjs";

export const ROOT = dirname(fileURLToPath(import.meta.url));
export const DIST = join(ROOT, "dist");
export const WORK = join(ROOT, ".build");
const PORF = join(ROOT, "node_modules", "porffor", "porf");
/** Build-time constants of the native init (runtime/main.ts declares them). */
const DEFINES = { STORAGE_INIT_ARCH: "x86-64" };

/** Tools the build needs, with the Debian package that has them. */
const TOOLS = { "musl-gcc": "musl-tools", depmod: "kmod" };

export function requireTool(name) {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
  } catch {
    const pkg = TOOLS[name] ?? name;
    throw new Error(`${name} not found: install it with 'apt-get install ${pkg}'`);
  }
}

/** Runs fn, printing what it did and how long it took. */
export async function step(what, fn) {
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const extra = typeof r === "string" ? ` ${r}` : "";
  console.log(`build: ${what}${extra} (${ms.toFixed(0)} ms)`);
  return r;
}

export function kib(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

/**
 * porffor's garbage collector bump-allocates through a 32 MiB nursery before its first minor
 * collection, so a short-lived PID 1 touches fresh pages for everything it ever allocates (each
 * a page fault, and more to tear down at exec). 2 MiB holds all that a boot of the test VMs
 * allocates (about 1.3 MiB resident at the handover), so no collection runs: the collector's code
 * would otherwise run once, and under QEMU's TCG code run once costs its translation (about 480
 * basic blocks, 10 ms). A boot that allocates more collects as usual.
 * The define is in porffor's C output; a compiler whose output lacks it fails the build here.
 */
export const GC_NURSERY_BYTES = 2 << 20;

/**
 * A property read `o.k` compiles to "if o is undefined, throw a TypeError, else look k up in o's
 * inline cache", written out at each of several hundred sites. One function with the same test
 * and the same call keeps it once (4 KiB of code). Exact: o is a C local, read twice either way.
 */
const CHECKED_GET = /if \(porf_jv_type\((\w+)\) == 0\) \{\s*porf_throw_new\((\d+), (\d+)u\);\s*\} else \{\s*(\w+) = (p\d+___Porffor_object_get_ic)\(\1, ([^;{}]*)\);\s*\}/g;

/**
 * Edits of porffor's runtime, each of text that must occur exactly once.
 * The heap arena: porffor reserves 4 GiB without access and makes each MiB readable and
 * writable as the heap grows, one mprotect() each, code the kernel runs for nothing else during
 * a boot (about 200 basic blocks to translate under QEMU's TCG). Mapped readable and writable
 * from the start with MAP_NORESERVE instead, as porffor already maps its collector's side
 * tables: pages still cost memory only when touched, and nothing is decommitted, which a
 * short-lived PID 1 never needs.
 */
const RUNTIME_EDITS = [
  { what: "the GC nursery", from: /#define PORF_GC_NURSERY_BYTES \d+u/, to: `#define PORF_GC_NURSERY_BYTES ${GC_NURSERY_BYTES}u` },
  { what: "the arena's protection", from: /#define PORF_MMAP_RESERVE_PROT PROT_NONE\n#define PORF_CAN_DECOMMIT 1\n/, to: "#define PORF_MMAP_RESERVE_PROT (PROT_READ | PROT_WRITE)\n#define PORF_CAN_DECOMMIT 0\n" },
  { what: "the arena's mapping", from: /(void\* got = mmap\(PORF_ARENA_HINT, PORF_ARENA_RESERVE, PORF_MMAP_RESERVE_PROT,\s*MAP_PRIVATE \| MAP_ANONYMOUS)(, -1, 0\);)/, to: "$1 | MAP_NORESERVE$2" },
];

/**
 * Rewrites porffor's C output in place (RUNTIME_EDITS; checked property reads through one
 * function). The patterns are porffor internals: output without them fails the build here, so
 * that a compiler upgrade is looked at instead of silently giving a slower or larger init.
 */
export function tunePorfforC(text) {
  for (const e of RUNTIME_EDITS) {
    const n = text.match(new RegExp(e.from.source, "g"))?.length ?? 0;
    if (n !== 1) throw new Error(`porffor's C has ${n} places for ${e.what} (expected 1); porffor changed, re-check RUNTIME_EDITS in build.mjs`);
    text = text.replace(e.from, e.to);
  }
  let getIc;
  text = text.replace(CHECKED_GET, (_m, obj, errType, msg, out, fn, rest) => {
    getIc = fn;
    return `${out} = porf_checked_get(${obj}, ${rest}, ${errType}, ${msg}u);`;
  });
  // No checked read at all: a program whose objects porffor knows are defined (or a porffor
  // that reads properties in a new way, which the init's size budget in tests/ notices).
  if (getIc === undefined) return text;
  const proto = new RegExp(`jsval ${getIc}\\(jsval, jsval, i32, i32\\);`);
  if (!proto.test(text)) throw new Error(`porffor's C declares ${getIc} differently; porffor changed, re-check tunePorfforC in build.mjs`);
  return text.replace(proto, (decl) => `${decl}
static jsval porf_checked_get(jsval o, jsval key, i32 hash, i32 slot, i32 errType, u32 msg) {
  if (porf_jv_type(o) == 0) porf_throw_new(errType, msg);
  return ${getIc}(o, key, hash, slot);
}`);
}

/**
 * TypeScript entry -> one typed TypeScript bundle (tsbundle.mjs: porffor turns the annotations
 * into typed C: the binary is 30 % smaller than from esbuild's untyped bundle) -> porffor C -> static
 * executable. Returns the output path. The linked binary with its symbols is kept beside it as
 * `<out>.debug` (`out` is that file stripped, byte for byte what `-s` gives), for gdb and for the
 * bench's code profile. The work files are removed after a good build.
 */
export async function compileNative(entry, out, { quiet = false } = {}) {
  requireTool("musl-gcc");
  const name = out.split("/").pop();
  // Unique work files: tests build natives in parallel (ava's workers share a pid).
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const ts = join(WORK, `${name}.${tag}.ts`);
  const c = join(WORK, `${name}.${tag}.c`);
  mkdirSync(WORK, { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  const log = quiet ? async (_w, fn) => fn() : step;
  await log(`bundle ${relative(ROOT, entry)} (typed)`, async () => {
    writeFileSync(ts, bundleTypeScript(entry, { tsconfig: join(ROOT, "tsconfig.json"), defines: DEFINES }));
    return `-> ${relative(ROOT, ts)}`;
  });
  await log("porffor", async () => {
    execFileSync(PORF, ["c", ts, "-o", c], { stdio: ["ignore", "ignore", "inherit"] });
    writeFileSync(c, tunePorfforC(readFileSync(c, "utf8")));
    return `-> ${relative(ROOT, c)}`;
  });
  await log("musl-gcc -static", async () => {
    execFileSync(
      "musl-gcc",
      ["-static", "-Oz", "-flto=auto", "-fno-asynchronous-unwind-tables", "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections",
       "-Wl,-z,noseparate-code", "-Wl,-z,norelro", "-Wl,--build-id=none",
       "-Wno-unused-function", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
       "-I", join(ROOT, "syscalls"), c, "-o", `${out}.debug`, "-lm"],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    execFileSync("strip", ["-o", out, `${out}.debug`]);
    return `-> ${relative(ROOT, out)} ${kib(statSync(out).size)}`;
  });
  rmSync(ts);
  rmSync(c);
  return out;
}

// ---- initramfs (newc cpio, written here so that device nodes need no root) ----

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function cpioHeader(ino, mode, size, nameLen, rmaj = 0, rmin = 0) {
  const f = (v) => v.toString(16).padStart(8, "0");
  return "070701" + [ino, mode, 0, 0, 1, 0, size, 0, 0, rmaj, rmin, nameLen, 0].map(f).join("");
}

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

/**
 * A newc cpio archive. entries: { path, type: "dir"|"file"|"chr", mode, data?, major?, minor? }.
 * Owners are root, times are zero: the archive is reproducible.
 */
export function cpioArchive(entries) {
  const parts = [];
  let ino = 1;
  const add = (name, mode, data, rmaj, rmin) => {
    const nameBuf = Buffer.from(name + "\0");
    const hdr = Buffer.from(cpioHeader(ino++, mode, data.length, nameBuf.length, rmaj, rmin));
    parts.push(hdr, nameBuf, Buffer.alloc(pad4(hdr.length + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const perm = e.mode ?? (e.type === "dir" ? 0o755 : 0o644);
    if (e.type === "dir") add(e.path, S_IFDIR | perm, Buffer.alloc(0));
    else if (e.type === "chr") add(e.path, S_IFCHR | perm, Buffer.alloc(0), e.major, e.minor);
    else add(e.path, S_IFREG | perm, Buffer.from(e.data));
  }
  add("TRAILER!!!", 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** The directories an entry list needs, parents first. */
function withParents(entries) {
  const dirs = new Set();
  for (const e of entries) {
    const parts = e.path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    if (e.type === "dir") dirs.add(e.path);
  }
  const dirEntries = [...dirs].sort().map((path) => ({ path, type: "dir" }));
  return [...dirEntries, ...entries.filter((e) => e.type !== "dir")];
}

/**
 * Writes a gzip-compressed initramfs holding /init, the mount points, /dev/console, and
 * `extra` entries (modules and their tables). Returns { path, size, entries }.
 */
export function writeInitramfs(initBinary, out, extra = []) {
  const entries = withParents([
    { path: "dev", type: "dir" },
    { path: "proc", type: "dir" },
    { path: "sys", type: "dir" },
    { path: "run", type: "dir" },
    { path: "sysroot", type: "dir" },
    { path: "dev/console", type: "chr", mode: 0o600, major: 5, minor: 1 },
    { path: "init", type: "file", mode: 0o755, data: readFileSync(initBinary) },
    ...extra,
  ]);
  const cpio = cpioArchive(entries);
  const gz = gzipSync(cpio, { level: 9 });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, gz);
  return { path: out, size: gz.length, rawSize: cpio.length, entries: entries.length };
}

// ---- the storage module closure ----

/**
 * Modules selected at boot by modalias: storage controllers and disks, as far as the kernel has
 * them. Names missing from a kernel are skipped with a note; built-in ones need no file.
 */
export const STORAGE_CLASSES = {
  virtio: ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod"],
  nvme: ["nvme"],
  sata: ["ahci", "ata_piix", "sd_mod"],
  usb: ["xhci_pci", "ehci_pci", "usb_storage", "uas", "sd_mod"],
  mmc: ["sdhci_pci", "sdhci_acpi", "mmc_block"],
};

/** The hardware modules for a list of storage classes ("all" for every class). */
export function hardwareModules(classes) {
  const list = classes.includes("all") ? Object.keys(STORAGE_CLASSES) : classes;
  const out = [];
  for (const c of list) {
    const mods = STORAGE_CLASSES[c];
    if (!mods) throw new Error(`unknown storage class ${c}; known: ${Object.keys(STORAGE_CLASSES).join(", ")}, all`);
    for (const m of mods) if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** Modules loaded by name for a phase of the boot. */
export const MODULE_GROUPS = [
  { group: "efi", names: ["efivarfs"] },
  { group: "vfat", names: ["vfat", "nls_cp437", "nls_ascii"] },
  { group: "loop", names: ["loop"] },
  { group: "verity", names: ["dm_verity"] },
  { group: "erofs", names: ["erofs"] },
];

/** Bundles a runtime TypeScript module for use here (the table code is shared with the init). */
async function importTs(rel) {
  const out = join(WORK, rel.replace(/[/.]/g, "_") + ".mjs");
  mkdirSync(WORK, { recursive: true });
  await esbuild({ entryPoints: [join(ROOT, rel)], bundle: true, format: "esm", platform: "node", outfile: out, logLevel: "warning" });
  return import(`${out}?${Date.now()}`);
}

/** Initramfs entries for the storage modules of the kernel unpacked in `kernelDir`. */
export async function moduleEntries(kernelDir, { storage = ["all"], groups = MODULE_GROUPS } = {}) {
  const hardware = hardwareModules(storage);
  const base = join(kernelDir, "lib", "modules");
  const version = readdirSync(base)[0];
  const dir = join(base, version);
  if (!existsSync(join(dir, "modules.dep"))) throw new Error(`${dir}/modules.dep is missing: run 'depmod -b ${kernelDir} ${version}'`);
  const { parseKernelModules, buildModuleTable } = await importTs("runtime/module_table.ts");
  const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
  const idx = parseKernelModules(read("modules.dep"), read("modules.alias"), read("modules.builtin"), read("modules.softdep"));
  const t = buildModuleTable(idx, hardware, groups);
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

// ---- tests ----

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

export async function bundleTests() {
  const entries = findTests(join(ROOT, "tests"));
  rmSync(join(WORK, "tests"), { recursive: true, force: true }); // no stale bundles of removed tests
  await esbuild({
    entryPoints: entries,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outdir: join(WORK, "tests"),
    outbase: join(ROOT, "tests"),
    packages: "external",
    sourcemap: "inline",
    logLevel: "warning",
    // Keep build.mjs a runtime import so tests share the one build implementation.
    external: ["../build.mjs", "../../build.mjs", "../qemu/*", "../../qemu/*"],
  });
  console.log(`build: bundled ${entries.length} test files -> ${relative(ROOT, join(WORK, "tests"))}`);
}

// ---- the init ----

export async function buildInit({ kernelDir, storage = ["all"], out = DIST } = {}) {
  const binary = await compileNative(join(ROOT, "runtime", "init.ts"), join(DIST, "storage-init"));
  let extra = [];
  if (kernelDir) {
    await step("storage module closure", async () => {
      const r = await moduleEntries(kernelDir, { storage });
      extra = r.entries;
      return `${r.count} modules for ${storage.join(",")}, ${kib(r.bytes)} (${r.version})`;
    });
  }
  const initramfs = join(out, kernelDir ? `initramfs-${storage.join("+")}.cpio.gz` : "initramfs.cpio.gz");
  await step("initramfs", async () => {
    const r = writeInitramfs(binary, initramfs, extra);
    return `-> ${relative(ROOT, r.path)} ${kib(r.size)} (${r.entries} entries, ${kib(r.rawSize)} uncompressed)`;
  });
  return { binary, initramfs, binarySize: statSync(binary).size, initramfsSize: statSync(initramfs).size };
}

async function cli(argv) {
  if (argv[0] === "tests") {
    // The boot tests use the artifacts in dist/, built once here before ava starts:
    // the init with every storage class, on Debian's current kernel.
    const { fetchKernel } = await import("./qemu/kernel.mjs");
    await buildInit({ kernelDir: fetchKernel().root, storage: ["all"] });
    return bundleTests();
  }
  let kernelDir;
  let storage = ["all"];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--kernel") kernelDir = resolve(argv[++i]);
    else if (argv[i] === "--storage") storage = argv[++i].split(",");
    else throw new Error(`unknown argument ${argv[i]}; usage: node build.mjs [--kernel DIR [--storage CLASS,...]] | tests`);
  }
  if (kernelDir && !existsSync(kernelDir)) throw new Error(`--kernel ${kernelDir}: no such directory`);
  hardwareModules(storage);
  await buildInit({ kernelDir, storage });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e) => {
    console.error(`build: ${e.message}`);
    process.exit(1);
  });
}
