/**
 * dm-verity without cryptsetup: the veritysetup superblock parser, the verity table, the
 * struct dm_ioctl encoder, and the create / load (read-only) / resume sequence over
 * /dev/mapper/control (uapi linux/dm-ioctl.h; Documentation/admin-guide/device-mapper/verity.rst).
 */
import type { Kernel } from "../syscalls/kernel.js";
import { closeQuietly, Errno, KernelError, OpenFlags, q } from "../syscalls/kernel.js";
import { uuidFromHex } from "./gpt.js";
import { putU32le, putU64le, readCString, toHex, u16le, u32le, u64le } from "../syscalls/bytes.js";
import { replaceText } from "./text.js";

export interface VeritySuperblock {
  version: number;
  hashType: number;
  uuid: string;
  algorithm: string;
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: number;
  salt: string;
}

export class VerityError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** Digest sizes of the algorithms veritysetup offers and the kernel has. */
const DIGEST_SIZES: { [alg: string]: number } = { sha1: 20, sha256: 32, sha512: 64 };
export const VERITY_SUPERBLOCK_SIZE = 512;

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Parses the 512-byte superblock at the start of a hash device; throws VerityError on nonsense. */
export function parseVeritySuperblock(b: Uint8Array): VeritySuperblock {
  if (b.length < VERITY_SUPERBLOCK_SIZE) throw new VerityError("verity superblock is truncated (" + b.length + " bytes)");
  const magic = "verity\0\0";
  for (let i = 0; i < 8; i++) if (b[i] !== magic.charCodeAt(i)) throw new VerityError("no verity superblock (bad signature)");
  const version = u32le(b, 8);
  if (version !== 1) throw new VerityError("verity superblock version " + version + " is not supported");
  const hashType = u32le(b, 12);
  if (hashType !== 1) throw new VerityError("verity hash type " + hashType + " is not supported (only 1)");
  const algorithm = readCString(b, 32, 64);
  const digest = DIGEST_SIZES[algorithm];
  if (digest === undefined) throw new VerityError("verity hash algorithm " + q(algorithm) + " is not supported");
  const dataBlockSize = u32le(b, 64);
  const hashBlockSize = u32le(b, 68);
  for (const [what, v] of [["data", dataBlockSize], ["hash", hashBlockSize]] as Array<[string, number]>) {
    if (!isPowerOfTwo(v) || v < 512 || v > 65536) throw new VerityError("verity " + what + " block size " + v + " is invalid");
  }
  const dataBlocks = u64le(b, 72);
  if (dataBlocks === 0 || dataBlocks > 4294967296 * 64) throw new VerityError("verity data block count " + dataBlocks + " is invalid");
  const saltSize = u16le(b, 80);
  if (saltSize > 256) throw new VerityError("verity salt size " + saltSize + " exceeds 256");
  const uuid = uuidFromHex(toHex(b.subarray(16, 32)));
  return { version, hashType, uuid, algorithm, dataBlockSize, hashBlockSize, dataBlocks, salt: toHex(b.subarray(88, 88 + saltSize)) };
}

/** Blocks of the hash tree for `sb` (veritysetup's layout), excluding the superblock block. */
export function hashTreeBlocks(sb: VeritySuperblock): number {
  const digest = DIGEST_SIZES[sb.algorithm];
  let padded = 1;
  while (padded < digest) padded *= 2;
  const perBlock = Math.floor(sb.hashBlockSize / padded);
  let total = 0;
  let blocks = sb.dataBlocks;
  do {
    blocks = Math.ceil(blocks / perBlock);
    total += blocks;
  } while (blocks > 1);
  return total;
}

/**
 * Checks that the superblock's geometry fits the partitions it claims to describe and returns
 * the block where the hash tree starts (the superblock occupies the blocks before it).
 */
export function checkVerityGeometry(sb: VeritySuperblock, dataSize: number, hashSize: number, rootHash: string): number {
  const dataBytes = sb.dataBlocks * sb.dataBlockSize;
  if (dataBytes > dataSize) throw new VerityError("verity superblock covers " + dataBytes + " bytes of data, but the root partition has " + dataSize);
  const hashStart = Math.ceil(VERITY_SUPERBLOCK_SIZE / sb.hashBlockSize);
  const needed = (hashStart + hashTreeBlocks(sb)) * sb.hashBlockSize;
  if (needed > hashSize) throw new VerityError("verity hash tree needs " + needed + " bytes, but the verity partition has " + hashSize);
  const digestHex = DIGEST_SIZES[sb.algorithm] * 2;
  if (rootHash.length !== digestHex) throw new VerityError("roothash= has " + rootHash.length + " hex digits, but " + sb.algorithm + " needs " + digestHex);
  return hashStart;
}

/** The dm-verity table line's parameters (everything after "verity"). */
export function verityParams(dataDev: string, hashDev: string, sb: VeritySuperblock, hashStart: number, rootHash: string, options: string[]): string {
  const salt = sb.salt === "" ? "-" : sb.salt;
  let p = "1 " + dataDev + " " + hashDev + " " + sb.dataBlockSize + " " + sb.hashBlockSize + " " + sb.dataBlocks + " " + hashStart + " " + sb.algorithm + " " + rootHash + " " + salt;
  const opts = options.map((o) => replaceText(o, "-", "_"));
  if (opts.length > 0) p += " " + opts.length + " " + opts.join(" ");
  return p;
}

// ---- device-mapper ioctls ----

export const DmIoctl = {
  VERSION: 0xc138fd00,
  DEV_CREATE: 0xc138fd03,
  DEV_REMOVE: 0xc138fd04,
  DEV_SUSPEND: 0xc138fd06,
  DEV_STATUS: 0xc138fd07,
  TABLE_LOAD: 0xc138fd09,
  TABLE_STATUS: 0xc138fd0c,
};
export const DmFlags = { READONLY: 1, SUSPEND: 2 };
export const DM_IOCTL_SIZE = 312;
const DM_TARGET_SPEC_SIZE = 40;
const DM_NAME_LEN = 128;
const DM_UUID_LEN = 129;

export interface DmTarget {
  start: number;
  length: number;
  type: string;
  params: string;
}

export interface DmRequest {
  name: string;
  uuid: string;
  flags: number;
  targets: DmTarget[];
  /** Extra room for the kernel's answer (status strings). */
  reserve: number;
}

function putString(b: Uint8Array, o: number, s: string, max: number): void {
  if (s.length >= max) throw new VerityError("device-mapper field too long: " + s.slice(0, 40));
  for (let i = 0; i < s.length; i++) b[o + i] = s.charCodeAt(i) & 0xff;
}

/** struct dm_ioctl (version 4.0.0) followed by the target specs, each padded to 8 bytes. */
export function encodeDmIoctl(r: DmRequest): Uint8Array {
  let size = DM_IOCTL_SIZE;
  for (const t of r.targets) size += DM_TARGET_SPEC_SIZE + ((t.params.length + 1 + 7) & ~7);
  size += r.reserve;
  const b = new Uint8Array(size);
  putU32le(b, 0, 4);
  putU32le(b, 4, 0);
  putU32le(b, 8, 0);
  putU32le(b, 12, size);
  putU32le(b, 16, DM_IOCTL_SIZE);
  putU32le(b, 20, r.targets.length);
  putU32le(b, 28, r.flags);
  putString(b, 48, r.name, DM_NAME_LEN);
  putString(b, 176, r.uuid, DM_UUID_LEN);
  let o = DM_IOCTL_SIZE;
  for (let i = 0; i < r.targets.length; i++) {
    const t = r.targets[i];
    const len = DM_TARGET_SPEC_SIZE + ((t.params.length + 1 + 7) & ~7);
    putU64le(b, o, t.start);
    putU64le(b, o + 8, t.length);
    putU32le(b, o + 20, i + 1 < r.targets.length ? len : 0);
    putString(b, o + 24, t.type, 16);
    putString(b, o + 40, t.params, len - DM_TARGET_SPEC_SIZE);
    o += len;
  }
  return b;
}

export interface DmReply {
  version: number[];
  flags: number;
  major: number;
  minor: number;
  dataStart: number;
  dataSize: number;
  targetCount: number;
}

export function decodeDmReply(b: Uint8Array): DmReply {
  const dev = u64le(b, 40);
  const lo = dev % 4294967296;
  return {
    version: [u32le(b, 0), u32le(b, 4), u32le(b, 8)],
    dataSize: u32le(b, 12),
    dataStart: u32le(b, 16),
    targetCount: u32le(b, 20),
    flags: u32le(b, 28),
    major: (lo >>> 8) & 0xfff,
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00),
  };
}

/** The status text of the first target in a TABLE_STATUS reply ("V" verified, "C" corrupted). */
export function dmStatusText(b: Uint8Array): string {
  const r = decodeDmReply(b);
  if (r.targetCount < 1 || r.dataStart + DM_TARGET_SPEC_SIZE > b.length) return "";
  return readCString(b, r.dataStart + DM_TARGET_SPEC_SIZE, Math.min(b.length, r.dataSize));
}

function dmCall(k: Kernel, ctl: number, request: number, what: string, r: DmRequest): Uint8Array {
  const b = encodeDmIoctl(r);
  try {
    k.ioctl(ctl, request, b);
  } catch (e) {
    if (e instanceof KernelError) throw new KernelError("device-mapper " + what, q(r.name), e.errno);
    throw e;
  }
  return b;
}

/** The status of dm device `name` ("V" verified, "C" corruption seen), or "" when unknown. */
export function verityStatus(k: Kernel, name: string): string {
  try {
    const ctl = k.open("/dev/mapper/control", OpenFlags.RDWR);
    try {
      const s = dmStatusText(dmCall(k, ctl, DmIoctl.TABLE_STATUS, "status", { name, uuid: "", flags: 0, targets: [], reserve: 1024 }));
      k.close(ctl);
      return s;
    } catch (e) {
      closeQuietly(k, [ctl]);
      return "";
    }
  } catch (e) {
    return "";
  }
}

export interface VerityDevice {
  name: string;
  path: string;
  major: number;
  minor: number;
}

/**
 * Creates the read-only verity device `name`: DM_DEV_CREATE, DM_TABLE_LOAD (read-only),
 * DM_DEV_SUSPEND without the suspend flag (resume). Removes the half-made device on failure.
 */
export function createVerityDevice(k: Kernel, name: string, sectors: number, params: string): VerityDevice {
  const ctl = k.open("/dev/mapper/control", OpenFlags.RDWR);
  const base = { name, uuid: "", flags: 0, targets: [] as DmTarget[], reserve: 0 };
  const made = { created: false };
  try {
    const v = decodeDmReply(dmCall(k, ctl, DmIoctl.VERSION, "version", { name: "", uuid: "", flags: 0, targets: [], reserve: 0 }));
    if (v.version[0] !== 4) throw new KernelError("device-mapper version", v.version.join("."), Errno.EINVAL);
    const created = decodeDmReply(dmCall(k, ctl, DmIoctl.DEV_CREATE, "create", { name, uuid: "STORAGE_INIT-VERITY-" + name, flags: 0, targets: [], reserve: 0 }));
    made.created = true;
    dmCall(k, ctl, DmIoctl.TABLE_LOAD, "load table", { name, uuid: "", flags: DmFlags.READONLY, targets: [{ start: 0, length: sectors, type: "verity", params }], reserve: 0 });
    dmCall(k, ctl, DmIoctl.DEV_SUSPEND, "resume", base);
    const status = dmStatusText(dmCall(k, ctl, DmIoctl.TABLE_STATUS, "status", { name, uuid: "", flags: 0, targets: [], reserve: 1024 }));
    if (status !== "V") throw new VerityError("dm-verity device " + name + " reports status " + q(status) + " instead of V (verified)");
    k.close(ctl);
    return { name, path: "/dev/dm-" + created.minor, major: created.major, minor: created.minor };
  } catch (e) {
    if (made.created) {
      try {
        dmCall(k, ctl, DmIoctl.DEV_REMOVE, "remove", base);
      } catch (e2) {
        // The original failure is the one to report; a leftover device does no harm before reboot.
      }
    }
    closeQuietly(k, [ctl]);
    throw e;
  }
}
