/**
 * The storage module closure, computed at image-build time: depmod's output files of a kernel
 * (modules.dep, modules.alias, modules.builtin, modules.softdep) to the table the init reads
 * (runtime/module_table.ts has the format) and the list of module files to copy.
 */
import { globMatch, moduleName, TABLE_MAGIC } from "../runtime/module_table.js";
import type { ModuleGroup } from "../runtime/module_table.js";
import { archFacts } from "./arches.js";

/**
 * Modules selected at boot by modalias: storage controllers and disks, as far as the kernel has
 * them. Names missing from a kernel are skipped with a note; built-in ones need no file.
 */
export const STORAGE_CLASSES: { [storageClass: string]: string[] } = {
  virtio: ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod"],
  nvme: ["nvme"],
  sata: ["ahci", "ata_piix", "sd_mod"],
  usb: ["xhci_pci", "ehci_pci", "usb_storage", "uas", "sd_mod"],
  mmc: ["sdhci_pci", "sdhci_acpi", "mmc_block"],
};

/** The hardware modules for a list of storage classes ("all" for every class) on `arch` (with what its boards add). */
export function hardwareModules(classes: string[], arch: string = "x86-64"): string[] {
  const extra = archFacts(arch).storageClasses;
  const known = [...Object.keys(STORAGE_CLASSES), ...Object.keys(extra).filter((c) => !(c in STORAGE_CLASSES))];
  const list = classes.includes("all") ? known : classes;
  const out: string[] = [];
  for (const c of list) {
    const mods = [...(STORAGE_CLASSES[c] ?? []), ...(extra[c] ?? [])];
    if (mods.length === 0) throw new Error(`unknown storage class ${c} for ${arch}; known: ${known.join(", ")}, all`);
    for (const m of mods) if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** Modules loaded by name for a phase of the boot. */
export const MODULE_GROUPS: Array<{ group: ModuleGroup; names: string[] }> = [
  { group: "efi", names: ["efivarfs"] },
  { group: "vfat", names: ["vfat", "nls_cp437", "nls_ascii"] },
  { group: "loop", names: ["loop"] },
  { group: "verity", names: ["dm_verity"] },
  // The hash algorithms dm-verity may be asked for (runtime/verity.ts digestBytes), by their
  // crypto API names: the module that implements each, when the kernel has none built in.
  { group: "hash-sha256", names: ["crypto-sha256"] },
  { group: "hash-sha512", names: ["crypto-sha512"] },
  { group: "hash-sha1", names: ["crypto-sha1"] },
  { group: "erofs", names: ["erofs"] },
  // A second stage: its erofs under a tmpfs, as systemd's initrd writes /etc and /var.
  { group: "overlay", names: ["overlay"] },
];

export interface KernelModuleIndex {
  /** name -> path relative to the modules directory */
  paths: Map<string, string>;
  /** name -> direct and indirect dependencies as modules.dep lists them */
  deps: Map<string, string[]>;
  aliases: Array<{ pattern: string; name: string }>;
  builtin: Set<string>;
  /** Aliases of built-in modules (modules.builtin.modinfo): what the kernel has without loading anything. */
  builtinAliases: Array<{ pattern: string; name: string }>;
}

/** Reads depmod's output files (their text). */
export function parseKernelModules(
  modulesDep: string,
  modulesAlias: string,
  modulesBuiltin: string,
  modulesSoftdep: string = "",
  modulesBuiltinModinfo: string = "",
): KernelModuleIndex {
  const idx: KernelModuleIndex = {
    paths: new Map(),
    deps: new Map(),
    aliases: [],
    builtin: new Set(),
    builtinAliases: [],
  };
  // "name.key=value" records separated by NULs.
  for (const record of modulesBuiltinModinfo.split("\0")) {
    const m = /^([^.=]+)\.alias=(.+)$/.exec(record);
    if (m) idx.builtinAliases.push({ pattern: m[2], name: moduleName(m[1]) });
  }
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    const name = moduleName(path);
    idx.paths.set(name, path);
    const rest = line.slice(colon + 1).trim();
    idx.deps.set(name, rest === "" ? [] : rest.split(" ").map(moduleName));
  }
  for (const line of modulesAlias.split("\n")) {
    const f = line.split(" ");
    if (f.length === 3 && f[0] === "alias") idx.aliases.push({ pattern: f[1], name: moduleName(f[2]) });
  }
  for (const line of modulesBuiltin.split("\n")) if (line !== "") idx.builtin.add(moduleName(line));
  // Soft "pre:" dependencies are what the module asks the kernel to request_module() at init
  // (libcrc32c -> crc32c). With no modprobe in the initramfs they must be loaded first.
  for (const line of modulesSoftdep.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== "softdep" || f.length < 3) continue;
    const name = moduleName(f[1]);
    const deps = idx.deps.get(name);
    if (deps === undefined) continue;
    let pre = false;
    const extra: string[] = [];
    for (const w of f.slice(2)) {
      if (w === "pre:") pre = true;
      else if (w === "post:") pre = false;
      else if (pre) {
        const m = resolveModule(idx, w);
        if (m !== undefined) extra.push(m, ...(idx.deps.get(m) ?? []));
      }
    }
    idx.deps.set(name, [...extra, ...deps]);
  }
  return idx;
}

/** A module by name, or by alias (`crc32c` -> crc32c_generic; the generic one is preferred). */
export function resolveModule(idx: KernelModuleIndex, nameOrAlias: string): string | undefined {
  const direct = moduleName(nameOrAlias);
  if (idx.paths.has(direct) || idx.builtin.has(direct)) return direct;
  // Built in: nothing to load (a loadable alternative would only add to the initramfs).
  const builtin = idx.builtinAliases.find((a) => globMatch(a.pattern, nameOrAlias));
  if (builtin) return builtin.name;
  const hits = idx.aliases.filter((a) => globMatch(a.pattern, nameOrAlias)).map((a) => a.name);
  const generic = hits.filter((h) => h.endsWith("_generic"));
  return generic.length > 0 ? generic[0] : hits[0];
}

/**
 * Aliases that a device's modalias can match. modules.alias also maps device numbers,
 * file-system and crypto names (block-major-8-*, fs-vfat, devname:...), which coldplug never sees.
 */
export function isDeviceAlias(pattern: string): boolean {
  const NOT_DEVICE = ["block-major-", "char-major-", "devname:", "fs-", "crypto-", "net-pf-", "symbol:"];
  for (const p of NOT_DEVICE) if (pattern.startsWith(p)) return false;
  return true;
}

/** Dependencies of `name` in load order (each after its own dependencies). */
function closure(name: string, idx: KernelModuleIndex, seen: Set<string>, out: string[]): void {
  if (seen.has(name)) return;
  seen.add(name);
  for (const d of idx.deps.get(name) ?? []) closure(d, idx, seen, out);
  out.push(name);
}

/**
 * The table for `hardware` modules (selected by modalias at boot) and `groups` (loaded by name).
 * Names the kernel has built in are dropped; names it does not have at all are returned in
 * `missing` for the caller to report. Returns the table text and the module files to copy.
 */
export function buildModuleTable(
  idx: KernelModuleIndex,
  hardware: string[],
  groups: Array<{ group: string; names: string[] }>,
  release: string,
): { text: string; files: Array<{ name: string; path: string; file: string }>; missing: string[] } {
  const missing: string[] = [];
  const wanted: string[] = [];
  const keep = (n: string): boolean => {
    if (idx.builtin.has(n)) return false;
    if (!idx.paths.has(n)) {
      missing.push(n);
      return false;
    }
    return true;
  };
  for (const n of hardware) if (keep(n)) wanted.push(n);
  const groupLines: string[] = [];
  for (const g of groups) {
    const names: string[] = [];
    for (const n of g.names) {
      const m = resolveModule(idx, n);
      if (m === undefined) missing.push(n);
      else if (keep(m)) names.push(m);
    }
    for (const n of names) wanted.push(n);
    if (names.length > 0) groupLines.push("g " + g.group + " " + names.join(","));
  }
  const all: string[] = [];
  const seen = new Set<string>();
  for (const n of wanted) closure(n, idx, seen, all);
  const lines = [TABLE_MAGIC + " " + release];
  const files: Array<{ name: string; path: string; file: string }> = [];
  for (const n of all) {
    if (idx.builtin.has(n)) continue;
    const path = idx.paths.get(n) as string;
    const file = path.slice(path.lastIndexOf("/") + 1);
    const order: string[] = [];
    closure(n, idx, new Set<string>(), order);
    const deps = order.filter((d) => d !== n && !idx.builtin.has(d) && idx.paths.has(d));
    lines.push("m " + n + " " + file + " " + (deps.length === 0 ? "-" : deps.join(",")));
    files.push({ name: n, path, file });
  }
  for (const a of idx.aliases) {
    if (hardware.indexOf(a.name) >= 0 && seen.has(a.name) && isDeviceAlias(a.pattern))
      lines.push("a " + a.name + " " + a.pattern);
  }
  for (const g of groupLines) lines.push(g);
  return { text: lines.join("\n") + "\n", files, missing };
}
