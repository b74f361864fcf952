// Test disks made with the real tools, cached under .cache/images/<hash of the inputs>/.
//
// Layout of the disk (a GPT disk, 512-byte sectors):
//
//   disk.img  GPT
//   └─ p1  ESP  type c12a7328-f81f-11d2-ba4b-00a0c93ec93b, vfat (mkfs.vfat + mtools)
//          └─ /EFI/storage-init/root.raw   the DDI (or the path given by ddiPath)
//               GPT (sgdisk)
//               ├─ p1 root        type 4f68bce3-e8cd-4db1-96e7-fbcaf984b709  uuid = roothash[0:128]
//               │    erofs (mkfs.erofs) of the test root: /sbin/init = qemu/marker.ts
//               └─ p2 root-verity type 2c7357ed-ebd2-46d9-aec1-23d437ec2bf5  uuid = roothash[-128:]
//                    veritysetup format of p1 (sha256, 4 KiB blocks, superblock)
//
// A DiskVariant changes one thing for a failure case. The cache key is the hash of the inputs:
// the variant, the target machine, and the content of every file the builders read.
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { DEFAULT_DDI_PATH, PartitionType } from "../lib/facts.ts";
import { uuidFromHex } from "../lib/hex.ts";
import { ARCH_TYPES } from "../runtime/ddi.ts";
import { VerityField } from "../runtime/verity.ts";
import type { Arch } from "../toolchain/arches.ts";
import { systemdRepart } from "../toolchain/debian.mjs";
import { compileNative } from "../toolchain/native.mjs";
import { CACHE, elfEntry, requireTool, ROOT, run } from "../toolchain/tools.mjs";
import { DISK_GUID, EROFS_UUID, ESP_PART_UUID, VERITY_SALT, VERITY_UUID } from "./test_disk.ts";

const MIB = 1024 * 1024;

/**
 * One change to the test disk, each for a failure case; {} is the disk as it should be.
 * assemble() applies them.
 */
export interface DiskVariant {
  /** Where the DDI lies on the ESP (default /EFI/storage-init/root.raw). */
  ddiPath?: string;
  /** Leave the DDI off the ESP. */
  omitDdi?: boolean;
  /** The disk's only partition is not typed as an ESP. */
  noEsp?: boolean;
  /** Flip one byte of the erofs data, at this offset into the root partition. */
  flipErofsByte?: number;
  /** Flip one byte of /sbin/init's data in the erofs image (read by the kernel after the switch). */
  flipInitByte?: boolean;
  /** Overwrite the primary GPT header of the disk (the backup must be used). */
  corruptPrimaryGpt?: boolean;
  /** veritysetup's hash algorithm (default sha256). */
  hash?: "sha256" | "sha512" | "sha1";
  /**
   * Lower the verity superblock's data block count by this many (the root hash stays valid: the
   * hash blocks on disk are the same).
   */
  lowerVerityDataBlocks?: number;
  /** The root is a second stage: a non-empty /etc/initrd-release and an empty /etc/machine-id, as a systemd initrd has. */
  secondStage?: boolean;
  /** With secondStage: no /etc/machine-id. */
  omitMachineId?: boolean;
}

/**
 * The machine a test disk is for: the architecture of its root (the marker built for it, the
 * DDI's partitions typed for it), and a size that is a power of two (QEMU's SD cards).
 */
export interface DiskTarget {
  arch?: Arch;
  powerOfTwo?: boolean;
}

/** A disk assemble() made: the disk image, its DDI (also alone), and the DDI's root hash. */
export interface Disk extends DiskFacts {
  disk: string;
  ddi: string;
  dir: string;
}

/** What a disk's meta.json holds: the facts, not the paths (its folder's files, diskIn()). */
interface DiskFacts {
  rootHash: string;
  espPartUuid: string;
  erofsOffsetInDdi: number;
}

/** A test disk: its root's /sbin/init is the marker, whose ELF entry point the bench looks for. */
export interface TestDisk extends Disk {
  markerEntry: number;
}

/**
 * The test keys: "mok" the key the MOK tests enroll, "other" one no machine trusts, "dkms" a
 * second MOK, "pcr" the one that signs UKIs' PCR 11 policies (qemu/encrypted_root.ts).
 */
export type TestKeyName = "mok" | "other" | "dkms" | "pcr";

/** A DDI systemd-repart makes (buildRepartDdi). */
export interface RepartOptions {
  /** IMAGE_VERSION= of its os-release, and /etc/storage-init-version ("1" by default). */
  version?: string;
  /** The test key that signs it, in a root-verity-sig partition; unsigned without. */
  signWith?: TestKeyName;
  /** Flip a byte near the end of the PKCS#7 (its signature value), keeping the JSON well-formed. */
  corruptSignature?: boolean;
  arch?: Arch;
}

export interface RepartDdi extends RepartFacts {
  ddi: string;
}

/** What a systemd-repart DDI's meta.json holds (its file is the folder's root.raw). */
interface RepartFacts {
  rootHash: string;
  version: string;
  signed: TestKeyName | undefined;
  /** The signing certificate's SHA-256 fingerprint, lower-case hex; undefined when unsigned. */
  fingerprint: string | undefined;
  /** systemd-repart's version. */
  repart: string;
}

/** A file to put on an ESP: `src` on the host, `path` on the ESP. */
export interface EspFile {
  src: string;
  path: string;
}

/** A partition sgdisk writes: type and unique GUID, name, first and last 512-byte sector. */
export interface SgdiskPartition {
  type: string;
  uuid: string;
  name: string;
  first: number;
  last: number;
}

/** What the verity and erofs tools made of a tree: the two images and the root hash. */
interface Root {
  erofs: string;
  verity: string;
  rootHash: string;
}

/** A partition gptImage() placed: its data file, where it lies in the image and its size, in bytes. */
interface Placed {
  data: string;
  offset: number;
  size: number;
}

/** Every file or folder (read recursively) the builders of this file read, from the project's root. */
const BUILDER_INPUTS = [
  "qemu/images.ts",
  "qemu/marker.ts",
  "qemu/test_disk.ts",
  "lib",
  "runtime",
  "syscalls",
  "toolchain",
  "package.json",
  "tsconfig.json",
];

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Writes `src` into `dst` at byte `offset`. */
function writeAt(dst: string, offset: number, src: Uint8Array): void {
  const fd = openSync(dst, "r+");
  try {
    writeSync(fd, src, 0, src.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Writes a GPT holding `parts` on the image `file`, which has its size already, with sgdisk. */
export function sgdiskPartition(file: string, parts: SgdiskPartition[], diskGuid: string): void {
  requireTool("sgdisk");
  const args = ["--clear"];
  parts.forEach((p, i) => {
    const n = i + 1;
    args.push(
      `--new=${n}:${p.first}:${p.last}`,
      `--typecode=${n}:${p.type}`,
      `--partition-guid=${n}:${p.uuid}`,
      `--change-name=${n}:${p.name}`,
    );
  });
  run("sgdisk", [...args, `--disk-guid=${diskGuid}`, file]);
}

/** Makes a GPT image at `out` holding the files `parts` as partitions, each MiB-aligned. */
function gptImage(
  out: string,
  parts: Array<{ data: string; type: string; uuid: string; name: string }>,
  { powerOfTwo = false } = {},
): Placed[] {
  let offset = MIB;
  const placed = parts.map((p) => {
    const size = alignUp(statSync(p.data).size, MIB);
    const r = { data: p.data, offset, size };
    offset += size;
    return r;
  });
  let total = offset + MIB;
  // QEMU's SD cards must be a power of two in size.
  if (powerOfTwo) total = 2 ** Math.ceil(Math.log2(total));
  rmSync(out, { force: true });
  writeFileSync(out, Buffer.alloc(0));
  run("truncate", ["-s", String(total), out]);
  sgdiskPartition(
    out,
    parts.map((p, i) => ({
      type: p.type,
      uuid: p.uuid,
      name: p.name,
      first: placed[i].offset / 512,
      last: (placed[i].offset + placed[i].size) / 512 - 1,
    })),
    DISK_GUID,
  );
  for (const p of placed) writeAt(out, p.offset, readFileSync(p.data));
  return placed;
}

/** The files under `path` (a file, or a folder read recursively), relative to ROOT. */
function filesUnder(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { withFileTypes: true }).flatMap((e) => filesUnder(join(path, e.name)));
}

let inputsHash: string | undefined;

/**
 * The SHA-256 of BUILDER_INPUTS: each file's path and content, in sorted order (no times, no
 * absolute paths), so that the same sources give the same key on every run and machine.
 */
function builderInputs(): string {
  if (inputsHash !== undefined) return inputsHash;
  const h = createHash("sha256");
  for (const f of BUILDER_INPUTS.flatMap(filesUnder).sort()) h.update(`${f}\0`).update(readFileSync(join(ROOT, f)));
  inputsHash = h.digest("hex");
  return inputsHash;
}

/**
 * The test root's file tree: /sbin/init is the marker program. Returns the tree and the marker's
 * ELF entry point (the bench finds where the init's code ends and the root's begins by it).
 */
async function buildMarkerTree(
  dir: string,
  arch: Arch,
  secondStage: boolean,
  omitMachineId = false,
): Promise<{ tree: string; markerEntry: number }> {
  const marker = await compileNative(join(ROOT, "qemu", "marker.ts"), join(dir, "marker"), { quiet: true, arch });
  const tree = join(dir, "tree");
  rmSync(tree, { recursive: true, force: true });
  for (const d of ["sbin", "dev", "proc", "sys", "run", "etc", "tmp"]) mkdirSync(join(tree, d), { recursive: true });
  copyFileSync(marker, join(tree, "sbin", "init"));
  run("chmod", ["0755", join(tree, "sbin", "init")]);
  writeFileSync(join(tree, "etc", "os-release"), 'ID=storage-init-test\nPRETTY_NAME="storage-init test root"\n');
  if (secondStage) {
    writeFileSync(
      join(tree, "etc", "initrd-release"),
      `ID=storage-init-test\nPRETTY_NAME="storage-init test second stage"\n`,
    );
    if (!omitMachineId) writeFileSync(join(tree, "etc", "machine-id"), "");
  }
  return { tree, markerEntry: Number(elfEntry(marker)) };
}

/** The erofs image of `tree`, the verity hash tree and the root hash. */
function buildRoot(dir: string, tree: string, { compress = false, hash = "sha256" } = {}): Root {
  requireTool("mkfs.erofs");
  requireTool("veritysetup");
  const erofs = join(dir, "root.erofs");
  run("mkfs.erofs", ["-T0", "--all-root", `-U${EROFS_UUID}`, ...(compress ? ["-zlz4hc"] : []), erofs, tree]);
  const verity = join(dir, "root.verity");
  rmSync(verity, { force: true });
  const out = run("veritysetup", [
    "format",
    erofs,
    verity,
    `--salt=${VERITY_SALT}`,
    `--uuid=${VERITY_UUID}`,
    "--data-block-size=4096",
    "--hash-block-size=4096",
    `--hash=${hash}`,
  ]);
  const m = out.match(/Root hash:\s+([0-9a-f]+)/);
  if (!m) throw new Error(`veritysetup format printed no root hash:\n${out}`);
  return { erofs, verity, rootHash: m[1] };
}

/** The DDI: GPT with the root and root-verity partitions of `arch`, UUIDs derived from the root hash. */
function buildDdi(out: string, root: Root, arch: Arch): Placed[] {
  const types = ARCH_TYPES[arch];
  return gptImage(out, [
    {
      data: root.erofs,
      type: types.root,
      uuid: uuidFromHex(root.rootHash.slice(0, 32)),
      name: `root-${arch}`,
    },
    {
      data: root.verity,
      type: types.rootVerity,
      uuid: uuidFromHex(root.rootHash.slice(-32)),
      name: `root-${arch}-verity`,
    },
  ]);
}

/** A vfat ESP image holding `files`, written with mtools (no mount), with `spareBytes` free beyond them. */
function buildEsp(out: string, files: EspFile[], spareBytes = 0): void {
  requireTool("mkfs.vfat");
  requireTool("mcopy");
  const bytes = files.reduce((n, f) => n + statSync(f.src).size, spareBytes);
  const kib = Math.max(34 * 1024, alignUp(Math.ceil((bytes * 1.1) / 1024) + 2048, 1024));
  rmSync(out, { force: true });
  run("mkfs.vfat", ["-F", "32", "-n", "ESP", "-i", "5a17e5b0", "-C", out, String(kib)]);
  for (const f of files) {
    const parts = f.path.split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      try {
        run("mmd", ["-i", out, "::/" + parts.slice(0, i).join("/")]);
      } catch {
        // exists already
      }
    }
    run("mcopy", ["-i", out, f.src, "::/" + parts.join("/")]);
  }
}

/** Builds (or reuses) the test disk `variant` for `target`. */
export async function buildDisk(variant: DiskVariant = {}, target: DiskTarget = {}): Promise<TestDisk> {
  const arch = target.arch ?? "x86-64";
  const powerOfTwo = target.powerOfTwo === true;
  const dir = cacheDir("", { variant, arch, powerOfTwo, inputs: builderInputs() });
  const done = cached<DiskFacts & { markerEntry: number }>(dir);
  if (done !== undefined) return diskIn(dir, done);
  const tmp = workDir(dir);
  const { tree, markerEntry } = await buildMarkerTree(
    tmp,
    arch,
    variant.secondStage === true,
    variant.omitMachineId === true,
  );
  const marker = join(tree, "sbin", "init");
  const root = buildRoot(tmp, tree, { hash: variant.hash });
  const facts = assemble(tmp, root, variant, { arch, powerOfTwo, marker });
  return diskIn(dir, publish(dir, tmp, { ...facts, markerEntry }));
}

/** A disk for an existing root tree (the systemd demo), built in `dir`. */
export async function buildDiskFromTree(
  tree: string,
  dir: string,
  { compress = false, arch = "x86-64" }: { compress?: boolean; arch?: Arch } = {},
): Promise<Disk> {
  const tmp = workDir(dir);
  return diskIn(dir, publish(dir, tmp, assemble(tmp, buildRoot(tmp, tree, { compress }), {}, { arch })));
}

/**
 * The disk whose facts are `facts` in the folder `dir`, which holds disk.img and root.raw. The
 * paths are not kept in meta.json: the cache is found through more than one path.
 */
export function diskIn<T extends DiskFacts>(dir: string, facts: T): T & Disk {
  return { ...facts, disk: join(dir, "disk.img"), ddi: join(dir, "root.raw"), dir };
}

/** The cache folder of what `inputs` describe: .cache/images/<prefix><hash of inputs>. */
function cacheDir(prefix: string, inputs: unknown): string {
  const key = createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);
  return join(CACHE, "images", prefix + key);
}

/** What publish() left in `dir` (its meta.json), or undefined. */
function cached<T>(dir: string): T | undefined {
  const meta = join(dir, "meta.json");
  return existsSync(meta) ? (JSON.parse(readFileSync(meta, "utf8")) as T) : undefined;
}

/** A fresh work folder beside `dir`, for publish() to move into place. */
function workDir(dir: string): string {
  const tmp = `${dir}.tmp-${randomBytes(6).toString("hex")}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  return tmp;
}

/**
 * Writes `result` as the work folder's meta.json and moves the folder to `dir`, unless another
 * process got there first: then its own is kept, this one removed, and the winner's meta.json is
 * returned (the tools' images are not byte-reproducible, so this root hash may not be that one).
 * `result` holds no paths: the folder's files are found from `dir`.
 */
function publish<T>(dir: string, tmp: string, result: T): T {
  writeFileSync(join(tmp, "meta.json"), JSON.stringify(result, null, 2));
  const winner = () => {
    const won = cached<T>(dir);
    if (won !== undefined) rmSync(tmp, { recursive: true, force: true });
    return won;
  };
  const early = winner();
  if (early !== undefined) return early;
  rmSync(dir, { recursive: true, force: true }); // a half-written leftover
  try {
    renameSync(tmp, dir);
  } catch (e) {
    const late = winner();
    if (late === undefined) throw e;
    return late;
  }
  return result;
}

/**
 * DDI -> ESP -> disk in `tmp` (root.raw, disk.img), with `variant` applied, for the machine
 * `target`. `marker`: the root's /sbin/init, which flipInitByte finds in the DDI.
 */
function assemble(
  tmp: string,
  root: Root,
  variant: DiskVariant,
  target: { arch: Arch; powerOfTwo?: boolean; marker?: string },
): DiskFacts {
  const ddi = join(tmp, "root.raw");
  const placed = buildDdi(ddi, root, target.arch);
  if (variant.lowerVerityDataBlocks !== undefined) {
    // struct verity_sb's data_blocks, a u64: the field runtime/verity.ts reads.
    const at = placed[1].offset + VerityField.DATA_BLOCKS;
    const b = Buffer.from(readFileSync(ddi).subarray(at, at + 8));
    b.writeBigUInt64LE(b.readBigUInt64LE(0) - BigInt(variant.lowerVerityDataBlocks));
    writeAt(ddi, at, b);
  }
  if (variant.flipInitByte) {
    // A byte of /sbin/init's first page (its program headers), found by its ELF header in the
    // root partition: read by the kernel only when it executes the init, after the switch.
    if (target.marker === undefined) throw new Error("flipInitByte needs the marker's file");
    const image = readFileSync(ddi);
    const head = readFileSync(target.marker).subarray(0, 64);
    const found = image.indexOf(head, placed[0].offset);
    if (found < 0 || found >= placed[0].offset + placed[0].size)
      throw new Error("the init's data is not in the erofs image");
    writeAt(ddi, found + 100, Buffer.from([image[found + 100] ^ 0xff]));
  }
  if (variant.flipErofsByte !== undefined) {
    const at = placed[0].offset + variant.flipErofsByte;
    const b = readFileSync(ddi).subarray(at, at + 1);
    writeAt(ddi, at, Buffer.from([b[0] ^ 0xff]));
  }
  const esp = join(tmp, "esp.img");
  if (variant.omitDdi) writeFileSync(join(tmp, "README"), "no DDI here\n");
  buildEsp(
    esp,
    variant.omitDdi
      ? [{ src: join(tmp, "README"), path: "/README" }]
      : [{ src: ddi, path: variant.ddiPath ?? DEFAULT_DDI_PATH }],
  );
  const disk = join(tmp, "disk.img");
  gptImage(
    disk,
    [
      {
        data: esp,
        type: variant.noEsp ? PartitionType.LINUX_DATA : PartitionType.ESP,
        uuid: ESP_PART_UUID,
        name: "ESP",
      },
    ],
    { powerOfTwo: target.powerOfTwo === true },
  );
  if (variant.corruptPrimaryGpt) writeAt(disk, 512, Buffer.from("NOT A GPT HEADER"));
  rmSync(join(tmp, "tree"), { recursive: true, force: true });
  for (const f of ["root.erofs", "root.verity", "esp.img", "marker"]) rmSync(join(tmp, f), { force: true });
  return { rootHash: root.rootHash, espPartUuid: ESP_PART_UUID, erofsOffsetInDdi: placed[0].offset };
}

/**
 * A GPT disk at `out` whose one partition is an ESP (PARTUUID `espPartUuid`) holding `files`:
 * the UEFI boots put systemd-boot, the UKI and the DDI on it. Not cached: the UKI changes with
 * every build.
 */
export function buildEspDisk(
  out: string,
  files: EspFile[],
  { espPartUuid, spareBytes = 0 }: { espPartUuid: string; spareBytes?: number },
): string {
  const esp = `${out}.esp`;
  buildEsp(esp, files, spareBytes);
  gptImage(out, [{ data: esp, type: PartitionType.ESP, uuid: espPartUuid, name: "ESP" }]);
  rmSync(esp, { force: true });
  return out;
}

/**
 * A test key and its self-signed certificate (RSA 2048, SHA-256), made once under
 * .cache/keys/ (TestKeyName says what each is for). Returns { key, cert } (PEM files).
 */
export function testKey(name: string): { key: string; cert: string } {
  requireTool("openssl");
  const dir = join(CACHE, "keys");
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  if (!existsSync(cert)) {
    mkdirSync(dir, { recursive: true });
    run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-sha256",
      "-days",
      "36500",
      "-subj",
      `/CN=storage-init test key ${name}`,
      "-keyout",
      `${key}.tmp`,
      "-out",
      `${cert}.tmp`,
    ]);
    renameSync(`${key}.tmp`, key);
    renameSync(`${cert}.tmp`, cert);
  }
  return { key, cert };
}

/** The SHA-256 fingerprint (lower-case hex) of a PEM certificate, as systemd-repart writes it. */
export function certificateFingerprint(cert: string): string {
  const out = run("openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]);
  return out
    .slice(out.indexOf("=") + 1)
    .trim()
    .split(":")
    .join("")
    .toLowerCase();
}

/**
 * A DDI made by systemd-repart (bookworm-backports' 254, --offline): an erofs root of the test
 * tree with /etc/storage-init-version holding the version and its os-release saying
 * IMAGE_VERSION= it (/usr/lib/os-release, /etc/os-release a link), its root-verity partition,
 * and, signed, a root-verity-sig partition (RepartOptions). Cached like buildDisk.
 */
export async function buildRepartDdi({
  version = "1",
  signWith,
  corruptSignature = false,
  arch = "x86-64",
}: RepartOptions = {}): Promise<RepartDdi> {
  const opts = { version, signWith, corruptSignature, arch };
  const dir = cacheDir("repart-", { repart: opts, inputs: builderInputs() });
  const ddi = join(dir, "root.raw");
  const done = cached<RepartFacts>(dir);
  if (done !== undefined) return { ...done, ddi };
  const repart = systemdRepart();
  const tmp = workDir(dir);
  mkdirSync(join(tmp, "defs"));
  const { tree } = await buildMarkerTree(tmp, arch, false);
  writeFileSync(join(tree, "etc", "storage-init-version"), `${version}\n`);
  // As a distribution lays it out: the image's version in /usr/lib/os-release, /etc/os-release a link to it.
  mkdirSync(join(tree, "usr", "lib"), { recursive: true });
  writeFileSync(
    join(tree, "usr", "lib", "os-release"),
    `ID=storage-init-test\nPRETTY_NAME="storage-init test root"\nIMAGE_ID=root\nIMAGE_VERSION=${version}\n`,
  );
  rmSync(join(tree, "etc", "os-release"));
  symlinkSync("../usr/lib/os-release", join(tree, "etc", "os-release"));
  const defs: Record<string, string> = {
    "10-root.conf": `[Partition]\nType=root-${arch}\nFormat=erofs\nCopyFiles=${tree}:/\nVerity=data\nVerityMatchKey=root\nMinimize=best\n`,
    "20-root-verity.conf": `[Partition]\nType=root-${arch}-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n`,
  };
  if (signWith !== undefined)
    defs["30-root-verity-sig.conf"] =
      `[Partition]\nType=root-${arch}-verity-sig\nVerity=signature\nVerityMatchKey=root\n`;
  for (const [f, text] of Object.entries(defs)) writeFileSync(join(tmp, "defs", f), text);
  const signer = signWith === undefined ? undefined : testKey(signWith);
  const work = join(tmp, "root.raw");
  const out = run(
    repart.bin,
    [
      "--offline=yes",
      `--definitions=${join(tmp, "defs")}`,
      "--empty=create",
      "--size=auto",
      "--dry-run=no",
      "--seed=5a1e5a1e-0000-4000-8000-0000000000d1",
      "--json=short",
      ...(signer === undefined ? [] : [`--private-key=${signer.key}`, `--certificate=${signer.cert}`]),
      work,
    ],
    { env: repart.env },
  );
  const parts = JSON.parse(out) as Array<{ type: string; offset: number; raw_size: number; roothash?: unknown }>;
  const rootHash = parts[0].roothash;
  if (typeof rootHash !== "string") throw new Error(`systemd-repart printed no root hash:\n${out}`);
  if (corruptSignature) corruptSignatureOf(work, parts);
  rmSync(join(tmp, "tree"), { recursive: true, force: true });
  rmSync(join(tmp, "marker"), { force: true });
  const facts = publish(dir, tmp, {
    rootHash,
    version,
    signed: signWith,
    fingerprint: signer === undefined ? undefined : certificateFingerprint(signer.cert),
    repart: repart.version,
  });
  return { ...facts, ddi };
}

/** Flips a byte near the end of the PKCS#7 in the root-verity-sig partition of `ddi`, its JSON kept well-formed. */
function corruptSignatureOf(ddi: string, parts: Array<{ type: string; offset: number; raw_size: number }>): void {
  const sig = parts.find((p) => p.type.endsWith("-verity-sig"));
  if (sig === undefined) throw new Error("corruptSignature: the DDI has no signature partition");
  const b = readFileSync(ddi);
  const text = b.toString("latin1", sig.offset, sig.offset + sig.raw_size);
  const json = text.slice(0, text.indexOf("\0"));
  const parsed = JSON.parse(json) as { signature: string };
  const der = Buffer.from(parsed.signature, "base64");
  der[der.length - 8] ^= 0x01;
  const edited = json.replace(parsed.signature, der.toString("base64"));
  if (edited.length !== json.length) throw new Error("the corrupted signature changed length");
  writeAt(ddi, sig.offset, Buffer.from(edited, "latin1"));
}
