/**
 * GUID Partition Tables, parsed from untrusted bytes (UEFI 2.10 §5.3). Finds the sector size by
 * looking for "EFI PART" at 512 and 4096, checks the header and entry-array CRC32s, and falls back
 * to the backup header at the last LBA when the primary is damaged.
 *
 * `parseGpt(read, size)` returns the table or throws a GptError saying what was wrong.
 */
import { crc32 } from "./crc32.js";
import { u32le, u64le } from "../syscalls/bytes.js";
import { replaceText } from "./text.js";

export interface GptPartition {
  /** 1-based, as the kernel numbers partitions (sda1, loop0p1). */
  number: number;
  typeGuid: string;
  partGuid: string;
  firstLba: number;
  lastLba: number;
  /** Byte offset and size, from the LBAs and the sector size. */
  offset: number;
  size: number;
  /** Attribute bits 32..63 (bit 60 read-only, 63 no-auto); the low 32 bits are not needed. */
  attrsHigh: number;
  name: string;
}

export interface Gpt {
  sectorSize: number;
  diskGuid: string;
  /** "primary", or "backup" when the primary header or its entries were damaged. */
  usedHeader: string;
  /** Why the primary was not used, when it was not. */
  primaryProblem: string | undefined;
  partitions: GptPartition[];
}

/** Reads `length` bytes at `offset`; may return fewer at the end of the device. */
export type ReadAt = (offset: number, length: number) => Uint8Array;

/** GPT type GUIDs we look for (UAPI Discoverable Partitions Specification). */
export const PartitionType = {
  ESP: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
  XBOOTLDR: "bc13c2ff-59e6-4262-a352-b275fd6f7172",
  ROOT_X86_64: "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
  ROOT_VERITY_X86_64: "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
  ROOT_VERITY_SIG_X86_64: "41092b05-9fc8-4523-994f-2def0408b176",
  ROOT_ARM64: "b921b045-1df0-41c3-af44-4c6f280d3fae",
  ROOT_VERITY_ARM64: "df3300ce-d69f-4c92-978c-9bfb0f38d820",
  ROOT_VERITY_SIG_ARM64: "6db69de6-29f4-4758-a7a5-962190f00ce3",
};

export class GptError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

const HEX = "0123456789abcdef";

function hexByte(v: number): string {
  return HEX[v >> 4] + HEX[v & 15];
}

/** A GUID as stored on disk (first three fields little-endian) to its text form. */
export function guidToString(b: Uint8Array, o: number): string {
  let s = "";
  const order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15];
  for (const i of order) s += i < 0 ? "-" : hexByte(b[o + i]);
  return s;
}

/** 32 hex digits as a GUID's text form 8-4-4-4-12 (systemd's partition UUIDs from a root hash). */
export function uuidFromHex(hex: string): string {
  return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20, 32);
}

/** The text form to the on-disk bytes; undefined when `s` is not a GUID. */
export function guidToBytes(s: string): Uint8Array | undefined {
  const hex = replaceText(s.toLowerCase(), "-", "");
  if (s.length !== 36 || hex.length !== 32 || s[8] !== "-" || s[13] !== "-" || s[18] !== "-" || s[23] !== "-") return undefined;
  const raw = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const hi = HEX.indexOf(hex[2 * i]);
    const lo = HEX.indexOf(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return undefined;
    raw[i] = hi * 16 + lo;
  }
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[order[i]] = raw[i];
  return out;
}

function utf16Name(b: Uint8Array, o: number, bytes: number): string {
  let s = "";
  for (let i = 0; i + 1 < bytes; i += 2) {
    const c = b[o + i] | (b[o + i + 1] << 8);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

const SIGNATURE = "EFI PART";
const MAX_ENTRIES = 1024;
const MAX_ENTRY_SIZE = 4096;

function hasSignature(b: Uint8Array): boolean {
  if (b.length < 92) return false;
  for (let i = 0; i < 8; i++) if (b[i] !== SIGNATURE.charCodeAt(i)) return false;
  return true;
}

interface Header {
  myLba: number;
  alternateLba: number;
  firstUsable: number;
  lastUsable: number;
  diskGuid: string;
  entriesLba: number;
  count: number;
  entrySize: number;
  entriesCrc: number;
}

/** Validates one header (read at `lba`); returns it, or a message saying what is wrong. */
function checkHeader(h: Uint8Array, lba: number, sectorSize: number, sectors: number): Header | string {
  if (!hasSignature(h)) return "no \"EFI PART\" signature at LBA " + lba;
  const headerSize = u32le(h, 12);
  if (headerSize < 92 || headerSize > sectorSize) return "header size " + headerSize + " is outside 92.." + sectorSize;
  const stored = u32le(h, 16);
  const copy = h.slice(0, headerSize);
  copy[16] = 0;
  copy[17] = 0;
  copy[18] = 0;
  copy[19] = 0;
  const actual = crc32(copy);
  if (actual !== stored) return "header CRC32 mismatch at LBA " + lba + " (stored " + stored.toString(16) + ", computed " + actual.toString(16) + ")";
  const hdr: Header = {
    myLba: u64le(h, 24),
    alternateLba: u64le(h, 32),
    firstUsable: u64le(h, 40),
    lastUsable: u64le(h, 48),
    diskGuid: guidToString(h, 56),
    entriesLba: u64le(h, 72),
    count: u32le(h, 80),
    entrySize: u32le(h, 84),
    entriesCrc: u32le(h, 88),
  };
  if (hdr.myLba !== lba) return "header at LBA " + lba + " says it is at LBA " + hdr.myLba;
  if (hdr.entrySize < 128 || hdr.entrySize > MAX_ENTRY_SIZE || hdr.entrySize % 8 !== 0) return "partition entry size " + hdr.entrySize + " is invalid";
  if (hdr.count > MAX_ENTRIES) return "partition entry count " + hdr.count + " exceeds " + MAX_ENTRIES;
  const entryBytes = hdr.count * hdr.entrySize;
  const entrySectors = Math.ceil(entryBytes / sectorSize);
  if (hdr.entriesLba < 2 || hdr.entriesLba + entrySectors > sectors) return "partition entries at LBA " + hdr.entriesLba + " lie outside the disk";
  if (hdr.firstUsable > hdr.lastUsable || hdr.lastUsable >= sectors) return "usable LBAs " + hdr.firstUsable + ".." + hdr.lastUsable + " do not fit the disk";
  return hdr;
}

function readEntries(read: ReadAt, hdr: Header, sectorSize: number): Uint8Array | string {
  const len = hdr.count * hdr.entrySize;
  const b = read(hdr.entriesLba * sectorSize, len);
  if (b.length < len) return "partition entries are truncated (" + b.length + " of " + len + " bytes)";
  const actual = crc32(b, 0, len);
  if (actual !== hdr.entriesCrc) return "partition entries CRC32 mismatch (stored " + hdr.entriesCrc.toString(16) + ", computed " + actual.toString(16) + ")";
  return b;
}

function parseEntries(b: Uint8Array, hdr: Header, sectorSize: number): GptPartition[] {
  const out: GptPartition[] = [];
  for (let i = 0; i < hdr.count; i++) {
    const o = i * hdr.entrySize;
    let empty = true;
    for (let j = 0; j < 16; j++) if (b[o + j] !== 0) empty = false;
    if (empty) continue;
    const firstLba = u64le(b, o + 32);
    const lastLba = u64le(b, o + 40);
    const typeGuid = guidToString(b, o);
    if (lastLba < firstLba || firstLba < hdr.firstUsable || lastLba > hdr.lastUsable) {
      throw new GptError("partition " + (i + 1) + " (type " + typeGuid + ") spans LBA " + firstLba + ".." + lastLba + ", outside the usable " + hdr.firstUsable + ".." + hdr.lastUsable);
    }
    out.push({
      number: i + 1,
      typeGuid,
      partGuid: guidToString(b, o + 16),
      firstLba,
      lastLba,
      offset: firstLba * sectorSize,
      size: (lastLba - firstLba + 1) * sectorSize,
      attrsHigh: u32le(b, o + 52),
      name: utf16Name(b, o + 56, Math.min(72, hdr.entrySize - 56)),
    });
  }
  for (let i = 0; i < out.length; i++) {
    for (let j = i + 1; j < out.length; j++) {
      if (out[i].firstLba <= out[j].lastLba && out[j].firstLba <= out[i].lastLba) {
        throw new GptError("partitions " + out[i].number + " and " + out[j].number + " overlap");
      }
    }
  }
  return out;
}

/**
 * Parses the GPT of a device or image of `size` bytes. Throws GptError when neither the primary
 * nor the backup header (with its entries) is valid, naming both problems.
 */
export function parseGpt(read: ReadAt, size: number): Gpt {
  let sectorSize = 0;
  for (const ss of [512, 4096]) {
    if (size >= ss * 3 && hasSignature(read(ss, 92))) {
      sectorSize = ss;
      break;
    }
  }
  // No primary signature: still try a backup header at the end, for either sector size.
  const sizes = sectorSize === 0 ? [512, 4096] : [sectorSize];
  let problem = "no \"EFI PART\" signature at LBA 1 (512- or 4096-byte sectors)";
  let backupProblem = "";
  let noSignature = true;
  for (const ss of sizes) {
    const sectors = Math.floor(size / ss);
    if (sectors < 3) {
      backupProblem = "the device is too small for a GPT (" + size + " bytes)";
      noSignature = false;
      continue;
    }
    if (sectorSize !== 0) {
      const primary = checkHeader(read(ss, ss), 1, ss, sectors);
      if (typeof primary !== "string") {
        const entries = readEntries(read, primary, ss);
        if (typeof entries !== "string") {
          return { sectorSize: ss, diskGuid: primary.diskGuid, usedHeader: "primary", primaryProblem: undefined, partitions: parseEntries(entries, primary, ss) };
        }
        problem = entries;
      } else problem = primary;
    }
    const lastLba = sectors - 1;
    const backup = checkHeader(read(lastLba * ss, ss), lastLba, ss, sectors);
    if (typeof backup !== "string") {
      const entries = readEntries(read, backup, ss);
      if (typeof entries !== "string") {
        return { sectorSize: ss, diskGuid: backup.diskGuid, usedHeader: "backup", primaryProblem: problem, partitions: parseEntries(entries, backup, ss) };
      }
      backupProblem = entries;
      noSignature = false;
    } else {
      backupProblem = backup;
      if (!backup.startsWith("no \"EFI PART\"")) noSignature = false;
    }
  }
  if (sectorSize === 0 && noSignature) {
    throw new GptError("no GPT: no \"EFI PART\" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)");
  }
  throw new GptError("no valid GPT: primary: " + problem + "; backup: " + backupProblem);
}
