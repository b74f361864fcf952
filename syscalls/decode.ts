/**
 * Decoders for the structures the kernel fills in for the shim: linux_dirent64 records and
 * struct statx. Pure functions, checked against the real kernel by tests/native.
 */
import { readCString, u16le, u32le, u64le } from "../lib/bytes.js";
import type { DirEntry, Stat } from "./kernel.js";

/** Size of struct statx (uapi linux/stat.h); its layout is the same on every architecture. */
export const STATX_SIZE = 256;

/** Entries of a getdents64 buffer of `len` bytes, without "." and "..". */
export function parseDirents(buf: Uint8Array, len: number, out: DirEntry[]): void {
  let off = 0;
  // Each record is checked against the length before it is read (porffor: typedarray-bounds).
  while (off + 19 <= len) {
    const reclen = u16le(buf, off + 16);
    if (reclen < 20 || off + reclen > len) throw new Error("getdents64: malformed record at " + off);
    const type = buf[off + 18];
    const name = readCString(buf, off + 19, off + reclen);
    if (name !== "." && name !== "..") out.push({ name, type });
    off += reclen;
  }
}

export function parseStatx(b: Uint8Array): Stat {
  return {
    mode: u16le(b, 28),
    size: u64le(b, 40),
    rdevMajor: u32le(b, 128),
    rdevMinor: u32le(b, 132),
    devMajor: u32le(b, 136),
    devMinor: u32le(b, 140),
  };
}
