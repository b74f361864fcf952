/**
 * The erofs superblock (fs/erofs/erofs_fs.h): 128 bytes at byte 1024, read through dm-verity, so
 * what it says is verified. Only what the boot checks is read: the magic, the block size and the
 * block count.
 */
import { u32le } from "../lib/bytes.js";
import { ParseError } from "../lib/errors.js";

export const EROFS_SUPERBLOCK_OFFSET = 1024;
export const EROFS_SUPERBLOCK_SIZE = 128;
const EROFS_MAGIC = 0xe0f5e1e2;
/** Offsets in struct erofs_super_block. */
const ErofsField = { MAGIC: 0, BLKSZBITS: 12, BLOCKS: 36 };

export interface ErofsSuperblock {
  blockSize: number;
  /** Blocks in the file system: its size is blocks * blockSize bytes. */
  blocks: number;
}

/** Parses the superblock's bytes; throws ParseError when they are not an erofs superblock. */
export function parseErofsSuperblock(b: Uint8Array): ErofsSuperblock {
  // porffor: typedarray-bounds
  if (b.length < EROFS_SUPERBLOCK_SIZE) throw new ParseError("the root has no erofs superblock (it is too short)");
  if (u32le(b, ErofsField.MAGIC) !== EROFS_MAGIC) throw new ParseError("the root is not erofs (no erofs superblock)");
  const bits = b[ErofsField.BLKSZBITS];
  if (bits < 9 || bits > 16) throw new ParseError("the erofs block size 2^" + bits + " is invalid");
  // Doubling, not 2 ** bits: porffor's ** links libm's pow and its tables.
  let blockSize = 1;
  for (let i = 0; i < bits; i++) blockSize *= 2;
  return { blockSize, blocks: u32le(b, ErofsField.BLOCKS) };
}

/**
 * Why the file system does not fit the `verified` bytes dm-verity covers, or "". The verity
 * superblock's block count is not itself verified: lowered, it keeps the root hash and leaves
 * the end of the file system unverifiable, to read as I/O errors an attacker chose.
 */
export function erofsFitRefusal(fs: ErofsSuperblock, verified: number): string {
  const size = fs.blocks * fs.blockSize;
  if (size <= verified) return "";
  return "the erofs file system has " + size + " bytes, but dm-verity verifies only " + verified + " of them";
}
