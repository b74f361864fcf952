/**
 * The dm-verity format without cryptsetup: the veritysetup superblock, the hash tree's geometry
 * and the verity table's parameters (Documentation/admin-guide/device-mapper/verity.rst).
 * Pure; the table is loaded through runtime/devmapper.ts.
 */
import { ParseError } from "../lib/errors.js";
import { readCString, u16le, u32le, u64le } from "../lib/bytes.js";
import { toHex, uuidFromHex } from "../lib/hex.js";
import { quote } from "../lib/quote.js";

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

/**
 * Digest bytes of the hash algorithms accepted, or undefined for any other name. A function of
 * string comparisons, not an object's keys: a name read from the disk such as `constructor`
 * must not find an inherited property.
 */
export function digestBytes(algorithm: string): number | undefined {
  if (algorithm === "sha256") return 32;
  if (algorithm === "sha512") return 64;
  if (algorithm === "sha1") return 20;
  return undefined;
}

/** Digests shorter than this are refused unless `storage_init.allow_weak_hash` is given. */
export const MIN_DIGEST_BYTES = 32;

export const VERITY_SUPERBLOCK_SIZE = 512;
/**
 * Offsets in the verity superblock: struct verity_sb of cryptsetup (lib/verity/verity.c),
 * little-endian. The signature takes 8 bytes, the UUID 16, the algorithm's name 32 (NUL-padded),
 * the salt 256 at most; DATA_BLOCKS is a u64, SALT_SIZE a u16, the other numbers u32.
 */
export const VerityField = {
  SIGNATURE: 0,
  VERSION: 8,
  HASH_TYPE: 12,
  UUID: 16,
  ALGORITHM: 32,
  DATA_BLOCK_SIZE: 64,
  HASH_BLOCK_SIZE: 68,
  DATA_BLOCKS: 72,
  SALT_SIZE: 80,
  SALT: 88,
};
const VERITY_SIGNATURE = "verity\0\0";
const VERITY_UUID_LEN = 16;
const VERITY_ALGORITHM_LEN = 32;
const VERITY_SALT_MAX = 256;

/** Parses the 512-byte superblock at the start of a hash device; throws ParseError on nonsense. */
export function parseVeritySuperblock(b: Uint8Array): VeritySuperblock {
  // porffor: typedarray-bounds
  if (b.length < VERITY_SUPERBLOCK_SIZE)
    throw new ParseError("verity superblock is truncated (" + b.length + " bytes)");
  for (let i = 0; i < 8; i++)
    if (b[VerityField.SIGNATURE + i] !== VERITY_SIGNATURE.charCodeAt(i))
      throw new ParseError("no verity superblock (bad signature)");
  const version = u32le(b, VerityField.VERSION);
  if (version !== 1) throw new ParseError("verity superblock version " + version + " is not supported");
  const hashType = u32le(b, VerityField.HASH_TYPE);
  if (hashType !== 1) throw new ParseError("verity hash type " + hashType + " is not supported (only 1)");
  const algorithm = readCString(b, VerityField.ALGORITHM, VerityField.ALGORITHM + VERITY_ALGORITHM_LEN);
  const digest = digestBytes(algorithm);
  if (digest === undefined) throw new ParseError("verity hash algorithm " + quote(algorithm) + " is not supported");
  const dataBlockSize = u32le(b, VerityField.DATA_BLOCK_SIZE);
  const hashBlockSize = u32le(b, VerityField.HASH_BLOCK_SIZE);
  for (const [what, v] of [
    ["data", dataBlockSize],
    ["hash", hashBlockSize],
  ] as Array<[string, number]>) {
    if (v < 512 || v > 65536 || (v & (v - 1)) !== 0)
      throw new ParseError("verity " + what + " block size " + v + " is invalid");
  }
  const dataBlocks = u64le(b, VerityField.DATA_BLOCKS);
  if (dataBlocks === 0 || dataBlocks > 4294967296 * 64)
    throw new ParseError("verity data block count " + dataBlocks + " is invalid");
  const saltSize = u16le(b, VerityField.SALT_SIZE);
  if (saltSize > VERITY_SALT_MAX) throw new ParseError("verity salt size " + saltSize + " exceeds 256");
  const uuid = uuidFromHex(toHex(b.subarray(VerityField.UUID, VerityField.UUID + VERITY_UUID_LEN)));
  return {
    version,
    hashType,
    uuid,
    algorithm,
    dataBlockSize,
    hashBlockSize,
    dataBlocks,
    salt: toHex(b.subarray(VerityField.SALT, VerityField.SALT + saltSize)),
  };
}

/** Blocks of the hash tree for `sb` (veritysetup's layout), excluding the superblock block. */
export function hashTreeBlocks(sb: VeritySuperblock): number {
  const digest = digestBytes(sb.algorithm) ?? 0;
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
export function checkVerityGeometry(
  sb: VeritySuperblock,
  dataSize: number,
  hashSize: number,
  rootHash: string,
  pageSize: number,
  allowWeakHash: boolean,
): number {
  // dm-verity takes block sizes from 512 bytes to the page size (dm-verity-target.c, verity_ctr).
  if (sb.dataBlockSize > pageSize || sb.hashBlockSize > pageSize) {
    const size = sb.dataBlockSize > pageSize ? sb.dataBlockSize : sb.hashBlockSize;
    const what = sb.dataBlockSize > pageSize ? "data" : "hash";
    throw new ParseError(
      "verity " + what + " block size " + size + " exceeds the page size " + pageSize + ", the most dm-verity takes",
    );
  }
  const digest = digestBytes(sb.algorithm) ?? 0;
  if (digest < MIN_DIGEST_BYTES && !allowWeakHash) {
    throw new ParseError(
      "verity hash " +
        sb.algorithm +
        " has " +
        digest * 8 +
        "-bit digests; storage-init takes 256 bits or more unless storage_init.allow_weak_hash is given",
    );
  }
  const dataBytes = sb.dataBlocks * sb.dataBlockSize;
  if (dataBytes > dataSize)
    throw new ParseError(
      "verity superblock covers " + dataBytes + " bytes of data, but the root partition has " + dataSize,
    );
  const hashStart = Math.ceil(VERITY_SUPERBLOCK_SIZE / sb.hashBlockSize);
  const needed = (hashStart + hashTreeBlocks(sb)) * sb.hashBlockSize;
  if (needed > hashSize)
    throw new ParseError("verity hash tree needs " + needed + " bytes, but the verity partition has " + hashSize);
  const digestHex = digest * 2;
  if (rootHash.length !== digestHex)
    throw new ParseError(
      "roothash= has " + rootHash.length + " hex digits, but " + sb.algorithm + " needs " + digestHex,
    );
  return hashStart;
}

/** The dm-verity table line's parameters (everything after "verity"). */
export function verityParams(
  dataDev: string,
  hashDev: string,
  sb: VeritySuperblock,
  hashStart: number,
  rootHash: string,
  options: string[],
): string {
  const salt = sb.salt === "" ? "-" : sb.salt;
  let p =
    "1 " +
    dataDev +
    " " +
    hashDev +
    " " +
    sb.dataBlockSize +
    " " +
    sb.hashBlockSize +
    " " +
    sb.dataBlocks +
    " " +
    hashStart +
    " " +
    sb.algorithm +
    " " +
    rootHash +
    " " +
    salt;
  if (options.length > 0) p += " " + options.length + " " + options.join(" ");
  return p;
}
