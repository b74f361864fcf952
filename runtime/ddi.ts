/**
 * The Discoverable Disk Image on the ESP: a GPT image whose root and root-verity partitions for
 * this architecture are found by type GUID (UAPI Discoverable Partitions Specification). With a
 * root hash, the partitions' UUIDs must be its first and last 128 bits, as systemd-repart and
 * mkosi write them. Everything in the file is untrusted: dm-verity is what makes it trusted.
 */
import { InitError, ParseError, withContext } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { uuidFromHex } from "../lib/hex.js";
import { quote } from "../lib/quote.js";
import { withReader } from "../syscalls/files.js";
import { fileType, FileType } from "../syscalls/kernel.js";
import { readGptFile } from "./blockdev.js";
import type { Gpt, GptPartition } from "./gpt.js";
import type { Kernel } from "../syscalls/kernel.js";
import type { Config, RootPolicy } from "./cmdline.js";
import { parseVeritySignature, SIG_READ_MAX } from "./verity_sig.js";
import type { VeritySignature } from "./verity_sig.js";

export interface ArchTypes {
  root: string;
  rootVerity: string;
  rootVeritySig: string;
}

export const ARCH_TYPES: { [arch: string]: ArchTypes } = {
  "x86-64": {
    root: PartitionType.ROOT_X86_64,
    rootVerity: PartitionType.ROOT_VERITY_X86_64,
    rootVeritySig: PartitionType.ROOT_VERITY_SIG_X86_64,
  },
  arm64: {
    root: PartitionType.ROOT_ARM64,
    rootVerity: PartitionType.ROOT_VERITY_ARM64,
    rootVeritySig: PartitionType.ROOT_VERITY_SIG_ARM64,
  },
};

/** The most root-verity-sig partitions a DDI may have for one architecture (one per root it carries). */
export const MAX_SIGNATURE_PARTITIONS = 4;
/** The largest root-verity-sig partition taken (systemd-repart writes 4 KiB to 16 KiB). */
export const MAX_SIGNATURE_PARTITION_BYTES = 1048576;

/** GPT attribute bit 63 (in the high word: bit 31): not for automatic discovery. */
const NO_AUTO = 0x80000000;

export interface DdiLayout {
  gpt: Gpt;
  root: GptPartition;
  /** The root-verity partition and what pins it; undefined with systemd.verity=0. */
  verity: DdiVerity | undefined;
}

/** The root-verity partition, the root hash that pins it, and the signature of that hash the kernel is to check. */
export interface DdiVerity {
  partition: GptPartition;
  rootHash: string;
  /** undefined when the DDI has none for this hash. */
  signature: VeritySignature | undefined;
}

/** What the command line says of the root: RootPolicy, roothash= and systemd.verity=0. */
export interface RootWant {
  policy: RootPolicy;
  rootHash: string | undefined;
  verityDisabled: boolean;
}

/** What the command line `c` wants of the root. */
export function rootWant(c: Config): RootWant {
  return { policy: c.rootPolicy, rootHash: c.rootHash, verityDisabled: c.verityDisabled };
}

function archTypes(arch: string): ArchTypes {
  const types = ARCH_TYPES[arch];
  if (types === undefined) throw new ParseError("no partition types known for architecture " + arch);
  return types;
}

/** The partitions of `type` meant for discovery (no-auto clear). */
function discoverable(gpt: Gpt, type: string): GptPartition[] {
  const out: GptPartition[] = [];
  for (const p of gpt.partitions) if (p.typeGuid === type && (p.attrsHigh & NO_AUTO) === 0) out.push(p);
  return out;
}

/**
 * The one partition among `found` whose UUID is `want` (a DDI may hold several root and verity
 * pairs, as for A/B updates: the root hash picks one, as systemd does); with no `want`, the only
 * one there is.
 */
function pick(found: GptPartition[], want: string | undefined, kind: string, arch: string, type: string): GptPartition {
  if (found.length === 0)
    throw new ParseError("the DDI has no " + kind + " partition for " + arch + " (type " + type + ")");
  if (want === undefined) {
    if (found.length > 1) {
      throw new ParseError("the DDI has " + found.length + " " + kind + " (" + arch + ") partitions; expected one");
    }
    return found[0];
  }
  let hit: GptPartition | undefined;
  for (const p of found) {
    if (p.partGuid !== want) continue;
    if (hit !== undefined)
      throw new ParseError("the DDI has two " + kind + " partitions with UUID " + want + ": ambiguous");
    hit = p;
  }
  if (hit !== undefined) return hit;
  if (found.length === 1) {
    throw new ParseError(
      kind + " partition UUID " + found[0].partGuid + " does not match roothash= (expected " + want + ")",
    );
  }
  throw new ParseError(
    "none of the DDI's " + found.length + " " + kind + " partitions has the UUID roothash= gives, " + want,
  );
}

/**
 * Picks the root and verity partitions of `gpt` for `arch`. A verity partition is required
 * unless `verityDisabled`; with `rootHash`, the partitions are those whose UUIDs are its first
 * and last 128 bits, as systemd-repart writes them and systemd checks (veritysetup-generator,
 * dissect-image): every roothash= has at least 128 bits (cmdline.ts).
 */
export function selectDdiPartitions(
  gpt: Gpt,
  arch: string,
  rootHash: string | undefined,
  verityDisabled: boolean,
): DdiLayout {
  const types = archTypes(arch);
  const roots = discoverable(gpt, types.root);
  if (verityDisabled) return { gpt, root: pick(roots, undefined, "root", arch, types.root), verity: undefined };
  if (rootHash === undefined) throw new InitError("no roothash= to verify the DDI with");
  const root = pick(roots, uuidFromHex(rootHash.slice(0, 32)), "root", arch, types.root);
  const verities = discoverable(gpt, types.rootVerity);
  const verity = pick(
    verities,
    uuidFromHex(rootHash.slice(rootHash.length - 32)),
    "root-verity",
    arch,
    types.rootVerity,
  );
  return { gpt, root, verity: { partition: verity, rootHash, signature: undefined } };
}

/** The DDI's root-verity-sig partitions for `arch`, each read and parsed (ParseError on any bad one). */
export function readSignatures(k: Kernel, file: string, gpt: Gpt, arch: string): VeritySignature[] {
  const parts = discoverable(gpt, archTypes(arch).rootVeritySig);
  if (parts.length > MAX_SIGNATURE_PARTITIONS)
    throw new ParseError(
      "the DDI has " + parts.length + " root-verity-sig partitions; at most " + MAX_SIGNATURE_PARTITIONS + " are read",
    );
  const out: VeritySignature[] = [];
  for (const p of parts) {
    if (p.size > MAX_SIGNATURE_PARTITION_BYTES)
      throw new ParseError(
        "root-verity-sig partition " +
          p.partGuid +
          " has " +
          p.size +
          " bytes; at most " +
          MAX_SIGNATURE_PARTITION_BYTES +
          " are taken",
      );
    const n = Math.min(p.size, SIG_READ_MAX);
    try {
      out.push(parseVeritySignature(withReader(k, file, (read) => read(p.offset, n))));
    } catch (e) {
      throw withContext("partition " + p.partGuid, e);
    }
  }
  return out;
}

/**
 * The partitions of the DDI in `file` that this boot needs, and the signature to check:
 * - `verity` policy: roothash= pins the partitions; the signature whose rootHash is roothash=,
 *   when the DDI has one, goes to the kernel as well;
 * - `signed` policy: the root hash is the one a signature partition carries (the one matching
 *   roothash= when that is given); a DDI without one is refused, never activated unsigned.
 */
export function readDdiLayout(k: Kernel, file: string, arch: string, want: RootWant): DdiLayout {
  const gpt = readDdi(k, file);
  if (want.verityDisabled) return selectDdiPartitions(gpt, arch, undefined, true);
  const sigs = readSignatures(k, file, gpt, arch);
  let sig: VeritySignature | undefined;
  for (const s of sigs) if (want.rootHash === undefined || s.rootHash === want.rootHash) sig = s;
  if (want.policy === "signed") {
    if (sigs.length === 0)
      throw new ParseError(
        "the DDI has no root-verity-sig partition for " +
          arch +
          ", and storage_init.root_policy=signed takes only signed roots",
      );
    if (want.rootHash === undefined && sigs.length > 1)
      throw new ParseError(
        "the DDI has " + sigs.length + " root-verity-sig partitions; without roothash= one is expected",
      );
    if (sig === undefined)
      throw new ParseError("none of the DDI's root-verity-sig partitions signs roothash= " + want.rootHash);
  }
  const rootHash = want.rootHash ?? (sig === undefined ? undefined : sig.rootHash);
  const layout = selectDdiPartitions(gpt, arch, rootHash, false);
  if (layout.verity !== undefined) layout.verity.signature = sig;
  return layout;
}

/**
 * Opens the DDI file and reads its partition table, refusing one with any invalid entry. A
 * directory, an empty or special file is named as such.
 */
export function readDdi(k: Kernel, path: string): Gpt {
  const st = k.stat(path);
  const type = fileType(st);
  if (type === FileType.DIR) throw new ParseError(quote(path) + " is a directory, not a DDI image");
  if (type !== FileType.REG) throw new ParseError(quote(path) + " is not a regular file");
  if (st.size === 0) throw new ParseError(quote(path) + " is empty");
  const gpt = readGptFile(k, path, st.size);
  // A disk may carry a bad entry beside its ESP; an image meant to be verified may not.
  if (gpt.skipped.length > 0) throw new ParseError(gpt.skipped.join("; "));
  return gpt;
}
