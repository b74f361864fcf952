/**
 * Block devices as sysfs shows them, and reading them: the disks under /sys/class/block, their
 * partitions, sizes and device nodes, and a pread-backed reader for the GPT parser.
 */
import type { Kernel } from "../syscalls/kernel.js";
import { closeQuietly, OpenFlags } from "../syscalls/kernel.js";
import { utf8Decode } from "../syscalls/bytes.js";
import { parseGpt } from "./gpt.js";
import { parseDecimal } from "./numbers.js";
import type { Gpt, ReadAt } from "./gpt.js";

export interface Disk {
  name: string;
  /** Size in bytes (sysfs `size` is in 512-byte units whatever the logical sector size). */
  size: number;
  /** Partition number -> kernel name (vda1, nvme0n1p1, loop0p2). */
  partitions: Map<number, string>;
}

/** Device-name prefixes that are never the disk holding the ESP. */
const NOT_DISKS = ["loop", "ram", "dm-", "zram", "sr", "md", "nbd"];

/** Reads a small text file (sysfs attribute, /proc entry); throws KernelError. */
export function readSmallFile(k: Kernel, path: string, max: number = 4096): string {
  const b = readSmallBytes(k, path, max);
  return utf8Decode(b, 0, b.length);
}

/**
 * Reads up to `max` bytes of a small file; throws KernelError. The buffer starts at 4 KiB and
 * grows only for larger files: every byte allocated is a page the init touches.
 */
export function readSmallBytes(k: Kernel, path: string, max: number): Uint8Array {
  const fd = k.open(path, OpenFlags.RDONLY);
  const st = { buf: new Uint8Array(Math.min(max, 4096)), n: 0 };
  try {
    for (;;) {
      if (st.n === st.buf.length) {
        if (st.buf.length >= max) break;
        const bigger = new Uint8Array(Math.min(max, st.buf.length * 4));
        bigger.set(st.buf, 0);
        st.buf = bigger;
      }
      const r = k.read(fd, st.buf.subarray(st.n));
      if (r === 0) break;
      st.n += r;
    }
  } catch (e) {
    k.close(fd);
    throw e;
  }
  k.close(fd);
  return st.buf.subarray(0, st.n);
}

/** The attribute's text, or undefined when it does not exist. */
export function readAttr(k: Kernel, path: string): string | undefined {
  try {
    return readSmallFile(k, path).trim();
  } catch (e) {
    return undefined;
  }
}

/** Whole disks with their partitions, from /sys/class/block. */
export function listDisks(k: Kernel): Disk[] {
  const names = k.readdir("/sys/class/block").map((e) => e.name);
  names.sort();
  const disks: Disk[] = [];
  const byName = new Map<string, Disk>();
  for (const name of names) {
    if (NOT_DISKS.some((p) => name.startsWith(p))) continue;
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

/** A reader over an open fd, for parseGpt; short reads at the end return fewer bytes. */
export function fdReader(k: Kernel, fd: number): ReadAt {
  return (offset: number, length: number): Uint8Array => {
    const b = new Uint8Array(length);
    let n = 0;
    while (n < length) {
      const r = k.pread(fd, b.subarray(n), offset + n);
      if (r === 0) break;
      n += r;
    }
    return n === length ? b : b.slice(0, n);
  };
}

/** Opens `path` read-only, hands `use` a reader over it, and closes it whatever happens. */
export function withReader<T>(k: Kernel, path: string, use: (read: ReadAt) => T): T {
  const fd = k.open(path, OpenFlags.RDONLY);
  try {
    const r = use(fdReader(k, fd));
    k.close(fd);
    return r;
  } catch (e) {
    closeQuietly(k, [fd]);
    throw e;
  }
}

/** The GPT of a device or image file of `size` bytes; throws GptError or KernelError. */
export function readGptFile(k: Kernel, path: string, size: number): Gpt {
  return withReader(k, path, (read) => parseGpt(read, size));
}
