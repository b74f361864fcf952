/** A GPT writer for tests; no Node imports, so the native conformance suite can use it too. */
import { putU32le, putU64le, u32le, u64le } from "../lib/bytes.js";
import { crc32 } from "../lib/crc32.js";
import { guidToBytes } from "../lib/hex.js";

export interface GptPart {
  type: string;
  uuid: string;
  first: number;
  last: number;
  name: string;
  attrsHigh?: number;
}

/**
 * A GPT with primary and backup headers for any sector size. The real tools here write only
 * 512-byte sectors to image files; this writer is checked against sgdisk in gpt.test.ts and
 * then used for 4096-byte sectors.
 */
export function writeGpt(sizeBytes: number, ss: number, parts: GptPart[], count: number = 128): Uint8Array {
  const disk = new Uint8Array(sizeBytes);
  const sectors = sizeBytes / ss;
  // The protective MBR the real tools write: one partition of type 0xee over the disk.
  disk[446 + 4] = 0xee;
  putU32le(disk, 446 + 8, 1);
  putU32le(disk, 446 + 12, Math.min(sectors - 1, 0xffffffff));
  disk[510] = 0x55;
  disk[511] = 0xaa;
  const entries = new Uint8Array(count * 128);
  parts.forEach((p, i) => {
    const o = i * 128;
    entries.set(guidToBytes(p.type) as Uint8Array, o);
    entries.set(guidToBytes(p.uuid) as Uint8Array, o + 16);
    putU64le(entries, o + 32, p.first);
    putU64le(entries, o + 40, p.last);
    putU32le(entries, o + 52, p.attrsHigh ?? 0);
    for (let j = 0; j < p.name.length; j++) entries[o + 56 + 2 * j] = p.name.charCodeAt(j);
  });
  const entrySectors = Math.ceil((count * 128) / ss);
  const header = (my: number, alt: number, entriesLba: number) => {
    const h = new Uint8Array(92);
    h.set([0x45, 0x46, 0x49, 0x20, 0x50, 0x41, 0x52, 0x54], 0);
    putU32le(h, 8, 0x00010000);
    putU32le(h, 12, 92);
    putU64le(h, 24, my);
    putU64le(h, 32, alt);
    putU64le(h, 40, 2 + entrySectors);
    putU64le(h, 48, sectors - 2 - entrySectors);
    h.set(guidToBytes("11111111-2222-3333-4444-555555555555") as Uint8Array, 56);
    putU64le(h, 72, entriesLba);
    putU32le(h, 80, count);
    putU32le(h, 84, 128);
    putU32le(h, 88, crc32(entries));
    putU32le(h, 16, crc32(h));
    return h;
  };
  disk.set(header(1, sectors - 1, 2), ss);
  disk.set(entries, 2 * ss);
  disk.set(header(sectors - 1, 1, sectors - 1 - entrySectors), (sectors - 1) * ss);
  disk.set(entries, (sectors - 1 - entrySectors) * ss);
  return disk;
}

/**
 * Recomputes the CRCs of the GPT headers at LBA 1 and at the last LBA (512-byte sectors) of
 * `b`, where a header's signature is still there: a mutation then reaches the parser as a
 * well-formed table that says something hostile, not as a CRC mismatch.
 */
export function resealGpt(b: Uint8Array): void {
  for (const lba of [1, b.length / 512 - 1]) {
    const h = lba * 512;
    if (String.fromCharCode(...b.subarray(h, h + 8)) !== "EFI PART") continue;
    const entries = Number(u64le(b, h + 72)) * 512;
    const bytes = u32le(b, h + 80) * u32le(b, h + 84);
    if (entries + bytes <= b.length && bytes <= 1048576) putU32le(b, h + 88, crc32(b, entries, entries + bytes));
    const size = Math.min(u32le(b, h + 12), 512);
    putU32le(b, h + 16, 0);
    putU32le(b, h + 16, crc32(b, h, h + size));
  }
}
