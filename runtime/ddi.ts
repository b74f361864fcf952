/**
 * The Discoverable Disk Image on the ESP: a GPT image whose root and root-verity partitions for
 * this architecture are found by type GUID (UAPI Discoverable Partitions Specification). With a
 * root hash, the partitions' UUIDs must be its first and last 128 bits, as systemd-repart and
 * mkosi write them. Everything in the file is untrusted: dm-verity is what makes it trusted.
 */
import { InitError, ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { uuidFromHex } from "../lib/hex.js";
import { readGptFile } from "./blockdev.js";
import type { Gpt, GptPartition } from "./gpt.js";
import type { Kernel } from "../syscalls/kernel.js";

export interface ArchTypes {
  root: string;
  rootVerity: string;
}

export const ARCH_TYPES: { [arch: string]: ArchTypes } = {
  "x86-64": { root: PartitionType.ROOT_X86_64, rootVerity: PartitionType.ROOT_VERITY_X86_64 },
  arm64: { root: PartitionType.ROOT_ARM64, rootVerity: PartitionType.ROOT_VERITY_ARM64 },
};

/** GPT attribute bit 63 (in the high word: bit 31): not for automatic discovery. */
const NO_AUTO = 0x80000000;

export interface DdiLayout {
  gpt: Gpt;
  root: GptPartition;
  /** The root-verity partition and the root hash that pins it; undefined with systemd.verity=0. */
  verity: { partition: GptPartition; rootHash: string } | undefined;
}

function only(gpt: Gpt, type: string, what: string): GptPartition | undefined {
  const found = gpt.partitions.filter((p) => p.typeGuid === type && (p.attrsHigh & NO_AUTO) === 0);
  if (found.length > 1)
    throw new ParseError("ddi", "the DDI has " + found.length + " " + what + " partitions; expected one");
  return found.length === 1 ? found[0] : undefined;
}

/**
 * Picks the root and verity partitions of `gpt` for `arch`. A verity partition is required
 * unless `verityDisabled`; with `rootHash`, the partition UUIDs must match its halves.
 */
export function selectDdiPartitions(
  gpt: Gpt,
  arch: string,
  rootHash: string | undefined,
  verityDisabled: boolean,
): DdiLayout {
  const types = ARCH_TYPES[arch];
  if (types === undefined) throw new ParseError("ddi", "no partition types known for architecture " + arch);
  const root = only(gpt, types.root, "root (" + arch + ")");
  if (root === undefined)
    throw new ParseError("ddi", "the DDI has no root partition for " + arch + " (type " + types.root + ")");
  const verity = only(gpt, types.rootVerity, "root-verity (" + arch + ")");
  if (verityDisabled) return { gpt, root, verity: undefined };
  if (verity === undefined)
    throw new ParseError(
      "ddi",
      "the DDI has no root-verity partition for " + arch + " (type " + types.rootVerity + ")",
    );
  if (rootHash === undefined) throw new InitError("no roothash= to verify the DDI with");
  // As systemd does (veritysetup-generator, dissect-image): the UUIDs are the first and last 128
  // bits of any root hash of at least 128 bits, which every roothash= is (cmdline.ts).
  if (rootHash.length >= 32) {
    const wantRoot = uuidFromHex(rootHash.slice(0, 32));
    const wantVerity = uuidFromHex(rootHash.slice(rootHash.length - 32));
    if (root.partGuid !== wantRoot)
      throw new ParseError(
        "ddi",
        "root partition UUID " + root.partGuid + " does not match roothash= (expected " + wantRoot + ")",
      );
    if (verity.partGuid !== wantVerity)
      throw new ParseError(
        "ddi",
        "root-verity partition UUID " + verity.partGuid + " does not match roothash= (expected " + wantVerity + ")",
      );
  }
  return { gpt, root, verity: { partition: verity, rootHash } };
}

/** Opens the DDI file and reads its partition table. */
export function readDdi(k: Kernel, path: string): Gpt {
  return readGptFile(k, path, k.stat(path).size);
}
