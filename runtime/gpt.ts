/**
 * GUID Partition Tables, parsed from untrusted bytes (UEFI 2.10 §5.3). Finds the sector size by
 * looking for "EFI PART" at 512 and 4096, checks the header and entry-array CRC32s, and falls back
 * to the backup header at the last LBA when the primary is damaged.
 *
 * `parseGpt(read, size)` returns the table or throws a ParseError saying what was wrong.
 */
import { ParseError } from "../lib/errors.js";
import { putU32le, u32le, u64le } from "../lib/bytes.js";
import { guidToString, utf16leText } from "../lib/hex.js";
import type { ReadAt } from "../syscalls/files.js";
import { crc32 } from "../lib/crc32.js";

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
  /**
   * Whether Linux partitions the disk by this table as it stands (block/partitions/efi.c): the
   * primary header, 128-byte entries, behind a protective MBR. Otherwise it makes no partition
   * nodes, and a partition is reached by its range.
   */
  kernelPartitions: boolean;
  /** The valid entries, in entry order. */
  partitions: GptPartition[];
  /**
   * Entries left out, each with its reason: outside the usable range, or overlapping another.
   * Linux skips such entries and partitions the rest; the ESP search does the same, and a DDI
   * with any is refused (ddi.ts).
   */
  skipped: string[];
}

/** Offsets in the MBR: its four 16-byte partition records, each with its type at TYPE, and the signature. */
const MbrField = { PARTITIONS: 446, TYPE: 4, SIGNATURE: 510 };
const MBR_RECORD_SIZE = 16;

/** A protective MBR: the 0x55aa signature and a partition of type 0xee. */
function hasProtectiveMbr(b: Uint8Array): boolean {
  // porffor: typedarray-bounds
  if (b.length < 512 || b[MbrField.SIGNATURE] !== 0x55 || b[MbrField.SIGNATURE + 1] !== 0xaa) return false;
  for (let i = 0; i < 4; i++) if (b[MbrField.PARTITIONS + MBR_RECORD_SIZE * i + MbrField.TYPE] === 0xee) return true;
  return false;
}

const SIGNATURE = "EFI PART";
/**
 * Offsets in the GPT header (UEFI 2.10 §5.3.2; Linux block/partitions/efi.h gpt_header),
 * little-endian: the signature (8 bytes), the revision, the header's size and CRC32 (u32 each),
 * 4 reserved bytes, four LBAs (u64 each), the disk GUID (16 bytes), the entries' LBA (u64), their
 * count, size and CRC32 (u32 each): 92 bytes.
 */
const GptHeaderField = {
  HEADER_SIZE: 12,
  HEADER_CRC32: 16,
  MY_LBA: 24,
  ALTERNATE_LBA: 32,
  FIRST_USABLE_LBA: 40,
  LAST_USABLE_LBA: 48,
  DISK_GUID: 56,
  ENTRIES_LBA: 72,
  ENTRY_COUNT: 80,
  ENTRY_SIZE: 84,
  ENTRIES_CRC32: 88,
};
const GPT_HEADER_SIZE = 92;
/**
 * Offsets in a partition entry (UEFI 2.10 §5.3.3; gpt_entry): the type and unique GUIDs (16
 * bytes each), the first and last LBA and the attributes (u64 each; ATTRIBUTES_HIGH is their
 * upper half, bits 32..63), the name (72 bytes of UTF-16LE).
 */
const GptEntryField = {
  TYPE_GUID: 0,
  PART_GUID: 16,
  FIRST_LBA: 32,
  LAST_LBA: 40,
  ATTRIBUTES_HIGH: 52,
  NAME: 56,
};
const GPT_NAME_SIZE = 72;
/** The size of gpt_entry: the least an entry takes, and the only size Linux partitions by. */
const GPT_ENTRY_SIZE = 128;
/** Linux reads any number of entries; 1 MiB of them (8,192 of 128 bytes) bounds the read. */
const MAX_ENTRY_BYTES = 1048576;
/**
 * Linux partitions by the first 255 entries at most (block/partitions/efi.c: the disk's
 * partition limit, DISK_MAX_PARTS): reading no further keeps to the partitions it makes, and
 * bounds the overlap check, which compares pairs.
 */
const MAX_PARTITIONS = 255;
/** Overlaps named one by one; more are counted (a hostile table can have thousands). */
const OVERLAPS_NAMED = 4;
const MAX_ENTRY_SIZE = 4096;

/** Every read below is checked against the bytes there are first (porffor: typedarray-bounds). */
function hasSignature(b: Uint8Array): boolean {
  if (b.length < GPT_HEADER_SIZE) return false;
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
  if (!hasSignature(h)) return 'no "EFI PART" signature at LBA ' + lba;
  const headerSize = u32le(h, GptHeaderField.HEADER_SIZE);
  if (headerSize < GPT_HEADER_SIZE || headerSize > sectorSize)
    return "header size " + headerSize + " is outside 92.." + sectorSize;
  const stored = u32le(h, GptHeaderField.HEADER_CRC32);
  // The CRC32 is over the header with its own field zero.
  const copy = h.slice(0, headerSize);
  putU32le(copy, GptHeaderField.HEADER_CRC32, 0);
  const actual = crc32(copy);
  if (actual !== stored)
    return (
      "header CRC32 mismatch at LBA " +
      lba +
      " (stored " +
      stored.toString(16) +
      ", computed " +
      actual.toString(16) +
      ")"
    );
  const hdr: Header = {
    myLba: u64le(h, GptHeaderField.MY_LBA),
    alternateLba: u64le(h, GptHeaderField.ALTERNATE_LBA),
    firstUsable: u64le(h, GptHeaderField.FIRST_USABLE_LBA),
    lastUsable: u64le(h, GptHeaderField.LAST_USABLE_LBA),
    diskGuid: guidToString(h, GptHeaderField.DISK_GUID),
    entriesLba: u64le(h, GptHeaderField.ENTRIES_LBA),
    count: u32le(h, GptHeaderField.ENTRY_COUNT),
    entrySize: u32le(h, GptHeaderField.ENTRY_SIZE),
    entriesCrc: u32le(h, GptHeaderField.ENTRIES_CRC32),
  };
  if (hdr.myLba !== lba) return "header at LBA " + lba + " says it is at LBA " + hdr.myLba;
  if (hdr.entrySize < GPT_ENTRY_SIZE || hdr.entrySize > MAX_ENTRY_SIZE || hdr.entrySize % 8 !== 0)
    return "partition entry size " + hdr.entrySize + " is invalid";
  const entryBytes = hdr.count * hdr.entrySize;
  if (entryBytes > MAX_ENTRY_BYTES)
    return hdr.count + " partition entries of " + hdr.entrySize + " bytes exceed " + MAX_ENTRY_BYTES + " bytes";
  const entrySectors = Math.ceil(entryBytes / sectorSize);
  if (hdr.entriesLba < 2 || hdr.entriesLba + entrySectors > sectors)
    return "partition entries at LBA " + hdr.entriesLba + " lie outside the disk";
  if (hdr.firstUsable > hdr.lastUsable || hdr.lastUsable >= sectors)
    return "usable LBAs " + hdr.firstUsable + ".." + hdr.lastUsable + " do not fit the disk";
  return hdr;
}

function readEntries(read: ReadAt, hdr: Header, sectorSize: number): Uint8Array | string {
  const len = hdr.count * hdr.entrySize;
  const b = read(hdr.entriesLba * sectorSize, len);
  if (b.length < len) return "partition entries are truncated (" + b.length + " of " + len + " bytes)";
  const actual = crc32(b, 0, len);
  if (actual !== hdr.entriesCrc)
    return (
      "partition entries CRC32 mismatch (stored " +
      hdr.entriesCrc.toString(16) +
      ", computed " +
      actual.toString(16) +
      ")"
    );
  return b;
}

function parseEntries(b: Uint8Array, hdr: Header, sectorSize: number, skipped: string[]): GptPartition[] {
  const all: GptPartition[] = [];
  for (let i = 0; i < hdr.count; i++) {
    const o = i * hdr.entrySize;
    let empty = true;
    for (let j = 0; j < 16; j++) if (b[o + GptEntryField.TYPE_GUID + j] !== 0) empty = false;
    if (empty) continue;
    if (i >= MAX_PARTITIONS) {
      skipped.push("entries past the " + MAX_PARTITIONS + "th (Linux reads no more)");
      break;
    }
    const firstLba = u64le(b, o + GptEntryField.FIRST_LBA);
    const lastLba = u64le(b, o + GptEntryField.LAST_LBA);
    const typeGuid = guidToString(b, o + GptEntryField.TYPE_GUID);
    if (lastLba < firstLba || firstLba < hdr.firstUsable || lastLba > hdr.lastUsable) {
      skipped.push(
        "partition " +
          (i + 1) +
          " (type " +
          typeGuid +
          ") spans LBA " +
          firstLba +
          ".." +
          lastLba +
          ", outside the usable " +
          hdr.firstUsable +
          ".." +
          hdr.lastUsable,
      );
      continue;
    }
    all.push({
      number: i + 1,
      typeGuid,
      partGuid: guidToString(b, o + GptEntryField.PART_GUID),
      firstLba,
      lastLba,
      offset: firstLba * sectorSize,
      size: (lastLba - firstLba + 1) * sectorSize,
      attrsHigh: u32le(b, o + GptEntryField.ATTRIBUTES_HIGH),
      name: utf16leText(
        b,
        o + GptEntryField.NAME,
        o + GptEntryField.NAME + Math.min(GPT_NAME_SIZE, hdr.entrySize - GptEntryField.NAME),
      ),
    });
  }
  // Overlapping entries: neither can be trusted to be what it says.
  const overlaps = new Uint8Array(all.length);
  let pairs = 0;
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      if (all[i].firstLba <= all[j].lastLba && all[j].firstLba <= all[i].lastLba) {
        if (++pairs <= OVERLAPS_NAMED)
          skipped.push("partitions " + all[i].number + " and " + all[j].number + " overlap");
        overlaps[i] = 1;
        overlaps[j] = 1;
      }
    }
  }
  if (pairs > OVERLAPS_NAMED) skipped.push("and " + (pairs - OVERLAPS_NAMED) + " more overlapping pairs");
  const out: GptPartition[] = [];
  for (let i = 0; i < all.length; i++) if (overlaps[i] === 0) out.push(all[i]);
  return out;
}

/**
 * Parses the GPT of a device or image of `size` bytes. Throws ParseError when neither the primary
 * nor the backup header (with its entries) is valid, naming both problems.
 */
export function parseGpt(read: ReadAt, size: number): Gpt {
  let sectorSize = 0;
  for (const ss of [512, 4096]) {
    if (size >= ss * 3 && hasSignature(read(ss, GPT_HEADER_SIZE))) {
      // A table at both sector sizes is ambiguous: refused, as systemd does (dissect-image.c).
      if (sectorSize !== 0)
        throw new ParseError("a GPT header at both 512 and 4096 bytes: refusing the ambiguous table");
      sectorSize = ss;
    }
  }
  // No primary signature: still try a backup header at the end, for either sector size.
  const sizes = sectorSize === 0 ? [512, 4096] : [sectorSize];
  let problem = 'no "EFI PART" signature at LBA 1 (512- or 4096-byte sectors)';
  let backupProblem = "";
  // Whether backupProblem is of a backup header that is there: that is named, not the absence
  // of one at the other sector size.
  let backupFound = false;
  let noSignature = true;
  const skipped: string[] = [];
  for (const ss of sizes) {
    const sectors = Math.floor(size / ss);
    if (sectors < 3) {
      if (!backupFound) backupProblem = "the device is too small for a GPT (" + size + " bytes)";
      noSignature = false;
      continue;
    }
    if (sectorSize !== 0) {
      const primary = checkHeader(read(ss, ss), 1, ss, sectors);
      if (typeof primary !== "string") {
        const entries = readEntries(read, primary, ss);
        if (typeof entries !== "string") {
          return {
            sectorSize: ss,
            diskGuid: primary.diskGuid,
            usedHeader: "primary",
            primaryProblem: undefined,
            kernelPartitions: primary.entrySize === GPT_ENTRY_SIZE && hasProtectiveMbr(read(0, 512)),
            partitions: parseEntries(entries, primary, ss, skipped),
            skipped,
          };
        }
        problem = entries;
      } else problem = primary;
    }
    const lastLba = sectors - 1;
    const backup = checkHeader(read(lastLba * ss, ss), lastLba, ss, sectors);
    if (typeof backup !== "string") {
      const entries = readEntries(read, backup, ss);
      if (typeof entries !== "string") {
        return {
          sectorSize: ss,
          diskGuid: backup.diskGuid,
          usedHeader: "backup",
          primaryProblem: problem,
          kernelPartitions: false,
          partitions: parseEntries(entries, backup, ss, skipped),
          skipped,
        };
      }
      backupProblem = entries;
      backupFound = true;
      noSignature = false;
    } else if (!backup.startsWith('no "EFI PART"')) {
      backupProblem = backup;
      backupFound = true;
      noSignature = false;
    } else if (!backupFound) backupProblem = backup;
  }
  if (sectorSize === 0 && noSignature) {
    throw new ParseError('no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)');
  }
  throw new ParseError("no valid GPT: primary: " + problem + "; backup: " + backupProblem);
}
