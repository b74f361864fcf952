/**
 * Loop devices over a file range, read-only (uapi linux/loop.h): LOOP_CTL_GET_FREE, then
 * LOOP_CONFIGURE (Linux 5.8+) in one call, retried when another opener races us for the same
 * device, and verified with LOOP_GET_STATUS64 afterwards (systemd loop-util.c does the same).
 */
import { InitError } from "../lib/errors.js";
import { putU32le, putU64le, u32le, u64le } from "../lib/bytes.js";
import { quote } from "../lib/quote.js";
import { Errno, isErrno } from "../syscalls/errno.js";
import { closeQuietly } from "../syscalls/files.js";
import { OpenFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

export const LoopIoctl = {
  SET_FD: 0x4c00,
  CLR_FD: 0x4c01,
  SET_STATUS64: 0x4c04,
  GET_STATUS64: 0x4c05,
  CONFIGURE: 0x4c0a,
  CTL_GET_FREE: 0x4c82,
};

export const LoopFlags = { READ_ONLY: 1, AUTOCLEAR: 4, PARTSCAN: 8, DIRECT_IO: 16 };

export const LOOP_CONFIG_SIZE = 304;
export const LOOP_INFO64_SIZE = 232;
/** Offsets in struct loop_config: the backing fd and the block size (u32 each), then struct loop_info64. */
const LoopConfigField = { FD: 0, BLOCK_SIZE: 4, INFO: 8 };
/**
 * Offsets in struct loop_info64 of what is set and verified: the offset and size limit (u64
 * each), the flags (u32) and the backing file's name (LO_NAME_SIZE bytes, NUL-terminated).
 */
const LoopInfoField = { OFFSET: 24, SIZELIMIT: 32, FLAGS: 52, FILE_NAME: 56 };
const LO_NAME_SIZE = 64;
/** How often a lost race for a free loop device is retried. */
const ATTACH_ATTEMPTS = 16;

export interface LoopRange {
  offset: number;
  size: number;
  flags: number;
  /** Logical block size for the loop device; 0 keeps the default (512). */
  blockSize: number;
}

/**
 * struct loop_config for LOOP_CONFIGURE: `fd`, the block size, and in its loop_info64 the range,
 * the flags and as much of the end of `fileName` as fits, in ASCII.
 */
export function encodeLoopConfig(fd: number, r: LoopRange, fileName: string): Uint8Array {
  const b = new Uint8Array(LOOP_CONFIG_SIZE);
  putU32le(b, LoopConfigField.FD, fd);
  putU32le(b, LoopConfigField.BLOCK_SIZE, r.blockSize);
  const info = LoopConfigField.INFO;
  putU64le(b, info + LoopInfoField.OFFSET, r.offset);
  putU64le(b, info + LoopInfoField.SIZELIMIT, r.size);
  putU32le(b, info + LoopInfoField.FLAGS, r.flags);
  const nameMax = LO_NAME_SIZE - 1;
  const name = fileName.length > nameMax ? fileName.slice(fileName.length - nameMax) : fileName;
  for (let i = 0; i < name.length; i++) b[info + LoopInfoField.FILE_NAME + i] = name.charCodeAt(i) & 0x7f;
  return b;
}

/** The fields of struct loop_info64 (LOOP_GET_STATUS64) that attachLoop() verifies. */
export function decodeLoopInfo(b: Uint8Array): { offset: number; size: number; flags: number } {
  return {
    offset: u64le(b, LoopInfoField.OFFSET),
    size: u64le(b, LoopInfoField.SIZELIMIT),
    flags: u32le(b, LoopInfoField.FLAGS),
  };
}

export interface LoopDevice {
  path: string;
  major: number;
  minor: number;
  /**
   * Our open fd on the device. With AUTOCLEAR the kernel detaches the loop when its last opener
   * closes, so this stays open until dm-verity (or the mount) holds the device; then close it.
   */
  fd: number;
}

/** One attempt on the device LOOP_CTL_GET_FREE names; the caller retries on a lost race. */
function configureOne(k: Kernel, ctl: number, backing: number, file: string, r: LoopRange): LoopDevice {
  const n = k.ioctlInt(ctl, LoopIoctl.CTL_GET_FREE, 0);
  const path = "/dev/loop" + n;
  // The device number from the node, not assumed: loop's major need not be 7 (a kernel built
  // with another), nor its minors 0, 1, 2 (max_part= spaces them).
  const node = k.stat(path);
  const fd = k.open(path, OpenFlags.RDONLY);
  // Assigned before try: the catch block reads it (porffor: try-catch-stale-locals).
  try {
    k.ioctl(fd, LoopIoctl.CONFIGURE, encodeLoopConfig(backing, r, file));
    const info = new Uint8Array(LOOP_INFO64_SIZE);
    k.ioctl(fd, LoopIoctl.GET_STATUS64, info);
    const got = decodeLoopInfo(info);
    if (got.offset !== r.offset || got.size !== r.size || (got.flags & LoopFlags.READ_ONLY) === 0) {
      throw new InitError(
        "LOOP_CONFIGURE " +
          quote(path) +
          " for " +
          quote(file) +
          " did not take (offset " +
          got.offset +
          ", size " +
          got.size +
          ")",
      );
    }
  } catch (e) {
    closeQuietly(k, [fd]);
    throw e;
  }
  return { path, major: node.rdevMajor, minor: node.rdevMinor, fd };
}

/**
 * Attaches `file`'s byte range to a free loop device. Retries (bounded) when the device we were
 * given is taken before we configure it (EBUSY) or its node is not there yet (ENOENT).
 * With LoopFlags.AUTOCLEAR the device goes away when its last user (dm-verity) closes it.
 */
export function attachLoop(k: Kernel, file: string, r: LoopRange): LoopDevice {
  const ctl = k.open("/dev/loop-control", OpenFlags.RDWR);
  // The catch block reads the backing fd; the loop's condition the result (porffor: try-catch-stale-locals).
  const fds = { backing: -1 };
  const result: LoopDevice[] = [];
  try {
    fds.backing = k.open(file, OpenFlags.RDONLY);
    for (let attempt = 1; result.length === 0; attempt++) {
      try {
        result.push(configureOne(k, ctl, fds.backing, file, r));
      } catch (e) {
        const race = isErrno(e, Errno.EBUSY) || isErrno(e, Errno.ENOENT);
        if (!race || attempt >= ATTACH_ATTEMPTS) throw e;
      }
    }
  } catch (e) {
    closeQuietly(k, [fds.backing, ctl]);
    throw e;
  }
  k.close(fds.backing);
  k.close(ctl);
  return result[0];
}
