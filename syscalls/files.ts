/**
 * Reading files through the Kernel interface: small text files (sysfs attributes, /proc
 * entries), byte ranges of devices and images, and closing on paths that are already failing.
 * Imports lib/ and the Kernel interface only.
 */
import { utf8Decode, utf8Encode } from "../lib/bytes.js";
import { OpenFlags } from "./kernel.js";
import type { Kernel } from "./kernel.js";

/** Reads `length` bytes at `offset`; may return fewer at the end of the device. */
export type ReadAt = (offset: number, length: number) => Uint8Array;

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
  // porffor: try-catch-stale-locals
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

/** Writes `text` (UTF-8) to `path`, created with `mode` or truncated; throws KernelError. */
export function writeSmallFile(k: Kernel, path: string, text: string, mode: number): void {
  const fd = k.open(path, OpenFlags.WRONLY | OpenFlags.CREAT | OpenFlags.TRUNC, mode);
  try {
    k.write(fd, utf8Encode(text));
  } catch (e) {
    closeQuietly(k, [fd]);
    throw e;
  }
  k.close(fd);
}

/** Closes fds >= 0, ignoring errors: used only on paths that are already failing. */
export function closeQuietly(k: Kernel, fds: number[]): void {
  for (const fd of fds) {
    if (fd < 0) continue;
    try {
      k.close(fd);
    } catch (e) {
      // Already failing; the original error is the one to report.
    }
  }
}

/** The names in directory `path` (without "." and ".."). */
export function entryNames(k: Kernel, path: string): string[] {
  const names: string[] = [];
  for (const e of k.readdir(path)) names.push(e.name);
  return names;
}
