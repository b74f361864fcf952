/**
 * Block devices as sysfs shows them: the disks under /sys/class/block, their partitions, sizes
 * and device nodes, and the GPT of a device or image file.
 */
import { ParseError } from "../lib/errors.js";
import { parseDecimal } from "../lib/numbers.js";
import { parseGpt } from "./gpt.js";
import type { Gpt } from "./gpt.js";
import { entryNames, readAttr, withReader } from "../syscalls/files.js";
import type { Kernel } from "../syscalls/kernel.js";

export interface Disk {
  name: string;
  /** Size in bytes (sysfs `size` is in 512-byte units whatever the logical sector size). */
  size: number;
  /** Partition number -> kernel name (vda1, nvme0n1p1, loop0p2). */
  partitions: Map<number, string>;
}

/** Device-name prefixes that are never the disk holding the ESP. */
const NOT_DISKS = ["loop", "ram", "dm-", "zram", "sr", "md", "nbd"];

function notADisk(name: string): boolean {
  for (const p of NOT_DISKS) if (name.startsWith(p)) return true;
  return false;
}

/** Whole disks with their partitions, from /sys/class/block. */
export function listDisks(k: Kernel): Disk[] {
  const names = entryNames(k, "/sys/class/block");
  names.sort(); // Array.prototype.sort orders any names right; `<` on strings would not (porffor: wide-string-compare)
  const disks: Disk[] = [];
  const byName = new Map<string, Disk>();
  for (const name of names) {
    if (notADisk(name)) continue;
    if (readAttr(k, "/sys/class/block/" + name + "/partition") !== undefined) continue;
    const sectors = parseDecimal(readAttr(k, "/sys/class/block/" + name + "/size") ?? "", 1);
    if (sectors === undefined || sectors === 0) continue;
    const d: Disk = { name, size: sectors * 512, partitions: new Map() };
    disks.push(d);
    byName.set(name, d);
  }
  for (const name of names) {
    const num = readAttr(k, "/sys/class/block/" + name + "/partition");
    if (num === undefined) continue;
    for (const d of disks) {
      if (name.startsWith(d.name) && name !== d.name) {
        // sda1 belongs to sda; nvme0n1p1 to nvme0n1 (and not to nvme0n10).
        const rest = name.slice(d.name.length);
        const n = parseDecimal(num, 1);
        if (n !== undefined && (rest === num || rest === "p" + num)) d.partitions.set(n, name);
      }
    }
  }
  return disks;
}

/** The GPT of a device or image file of `size` bytes; throws ParseError or KernelError. */
export function readGptFile(k: Kernel, path: string, size: number): Gpt {
  return withReader(k, path, (read) => parseGpt(read, size));
}
