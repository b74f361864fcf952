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
// Variants (options of buildDisk) change one thing for a failure case.
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
import { compileNative } from "../toolchain/native.mjs";
import { systemdRepart } from "../toolchain/debian.mjs";
import { CACHE, elfEntry, requireTool, ROOT, run } from "../toolchain/tools.mjs";
import { DISK_GUID, EROFS_UUID, ESP_PART_UUID, VERITY_SALT, VERITY_UUID } from "./test_disk.ts";

const MIB = 1024 * 1024;
const IMAGE_FORMAT = 5; // bump when this file changes what it builds

function alignUp(n, a) {
  return Math.ceil(n / a) * a;
}

/** Writes `src` into `dst` at byte `offset`. */
function writeAt(dst, offset, src) {
  const fd = openSync(dst, "r+");
  try {
    writeSync(fd, src, 0, src.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Makes a GPT image at `out` holding `parts` [{ data (path), type, uuid, name }], each MiB-aligned. */
function gptImage(out, parts, { powerOfTwo = false } = {}) {
  requireTool("sgdisk");
  let offset = MIB;
  const placed = parts.map((p) => {
    const size = alignUp(statSync(p.data).size, MIB);
    const r = { ...p, offset, size };
    offset += size;
    return r;
  });
  let total = offset + MIB;
  // QEMU's SD cards must be a power of two in size.
  if (powerOfTwo) total = 2 ** Math.ceil(Math.log2(total));
  rmSync(out, { force: true });
  writeFileSync(out, Buffer.alloc(0));
  run("truncate", ["-s", String(total), out]);
  const args = ["--clear"];
  placed.forEach((p, i) => {
    const n = i + 1;
    args.push(
      `--new=${n}:${p.offset / 512}:${(p.offset + p.size) / 512 - 1}`,
      `--typecode=${n}:${p.type}`,
      `--partition-guid=${n}:${p.uuid}`,
      `--change-name=${n}:${p.name}`,
    );
  });
  args.push(`--disk-guid=${DISK_GUID}`, out);
  run("sgdisk", args);
  for (const p of placed) writeAt(out, p.offset, readFileSync(p.data));
  return placed;
}

/** Everything the marker binary is built from: a change to any of them rebuilds the images. */
function markerSources() {
  const files = [join(ROOT, "qemu", "marker.ts"), join(ROOT, "qemu", "test_disk.ts")];
  for (const dir of ["lib", "runtime", "syscalls", "toolchain", "toolchain/porffor", "toolchain/tsbundle"]) {
    for (const f of readdirSync(join(ROOT, dir)).sort()) if (f.includes(".")) files.push(join(ROOT, dir, f));
  }
  return createHash("sha256")
    .update(files.map((f) => readFileSync(f)).join("\0"))
    .digest("hex");
}

/**
 * The test root's file tree: /sbin/init is the marker program. Returns the tree and the marker's
 * ELF entry point (the bench finds where the init's code ends and the root's begins by it).
 */
async function buildMarkerTree(dir, arch = "x86-64") {
  const marker = await compileNative(join(ROOT, "qemu", "marker.ts"), join(dir, "marker"), { quiet: true, arch });
  const tree = join(dir, "tree");
  rmSync(tree, { recursive: true, force: true });
  for (const d of ["sbin", "dev", "proc", "sys", "run", "etc", "tmp"]) mkdirSync(join(tree, d), { recursive: true });
  copyFileSync(marker, join(tree, "sbin", "init"));
  run("chmod", ["0755", join(tree, "sbin", "init")]);
  writeFileSync(join(tree, "etc", "os-release"), 'ID=storage-init-test\nPRETTY_NAME="storage-init test root"\n');
  return { tree, markerEntry: Number(elfEntry(marker)) };
}

/** The erofs image of `tree`, the verity hash tree and the root hash. */
function buildRoot(dir, tree, { compress = false, hash = "sha256" } = {}) {
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
function buildDdi(out, root, arch = "x86-64") {
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

/** A vfat ESP image holding `files` [{ src, path }], written with mtools (no mount). */
function buildEsp(out, files, spareBytes = 0) {
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

/**
 * Builds (or reuses) a test disk. Options, each for a failure case:
 *   ddiPath        where the DDI lies on the ESP (default /EFI/storage-init/root.raw)
 *   omitDdi        leave the DDI off the ESP
 *   noEsp          the disk's only partition is not typed as an ESP
 *   flipErofsByte  flip one byte of the erofs data (at this offset into the root partition)
 *   flipInitByte   flip one byte of /sbin/init's data in the erofs image (read after the switch)
 *   corruptPrimaryGpt  overwrite the primary GPT header of the disk (the backup must be used)
 *   hash           veritysetup's hash algorithm (default sha256)
 *   lowerVerityDataBlocks  lower the verity superblock's data block count by this many (the
 *                  root hash stays valid: the hash blocks on disk are the same)
 *   arch           "arm64": the marker built for arm64 and the DDI's partitions typed for it
 *   sdCard         the disk's size a power of two, as QEMU's SD cards must be
 * Returns { disk, rootHash, espPartUuid, dir, markerEntry }.
 */
export async function buildDisk(opts = {}) {
  const dir = cacheDir("", { IMAGE_FORMAT, opts, sources: markerSources() });
  const done = cached(dir);
  if (done !== undefined) return done;
  const tmp = workDir(dir);
  const { tree, markerEntry } = await buildMarkerTree(tmp, opts.arch);
  const marker = join(tree, "sbin", "init");
  return assemble(dir, tmp, buildRoot(tmp, tree, { hash: opts.hash }), opts, { markerEntry, marker });
}

/** A disk for an existing root tree (the systemd demo), built in `dir`. */
export async function buildDiskFromTree(tree, dir, { compress = false } = {}) {
  const tmp = workDir(dir);
  return assemble(dir, tmp, buildRoot(tmp, tree, { compress }), {});
}

/** The cache folder of what `inputs` describe: .cache/images/<prefix><hash of inputs>. */
function cacheDir(prefix, inputs) {
  const key = createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);
  return join(CACHE, "images", prefix + key);
}

/** What publish() left in `dir` (its meta.json), or undefined. */
function cached(dir) {
  const meta = join(dir, "meta.json");
  return existsSync(meta) ? JSON.parse(readFileSync(meta, "utf8")) : undefined;
}

/** A fresh work folder beside `dir`, for publish() to move into place. */
function workDir(dir) {
  const tmp = `${dir}.tmp-${randomBytes(6).toString("hex")}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  return tmp;
}

/**
 * Writes `result` as the work folder's meta.json and moves the folder to `dir`, unless another
 * process got there first: then its own is kept, this one removed, and the winner's meta.json is
 * returned (the tools' images are not byte-reproducible, so this root hash may not be that one).
 */
function publish(dir, tmp, result) {
  writeFileSync(join(tmp, "meta.json"), JSON.stringify(result, null, 2));
  const winner = () => {
    const won = cached(dir);
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

/** DDI -> ESP -> disk in `tmp`, with the variant `opts`, then moved to `dir`. */
function assemble(dir, tmp, root, opts, extra = {}) {
  // What the result keeps of `extra`: not the marker's path, which the work folder loses.
  const { marker: _marker, ...kept } = extra;
  const ddi = join(tmp, "root.raw");
  const placed = buildDdi(ddi, root, opts.arch);
  if (opts.lowerVerityDataBlocks !== undefined) {
    const at = placed[1].offset + 72; // struct verity_sb: data_blocks, u64
    const b = Buffer.from(readFileSync(ddi).subarray(at, at + 8));
    b.writeBigUInt64LE(b.readBigUInt64LE(0) - BigInt(opts.lowerVerityDataBlocks));
    writeAt(ddi, at, b);
  }
  if (opts.flipInitByte) {
    // A byte of /sbin/init's first page (its program headers), found by its ELF header in the
    // root partition: read by the kernel only when it executes the init, after the switch.
    const image = readFileSync(ddi);
    const head = readFileSync(extra.marker).subarray(0, 64);
    const found = image.indexOf(head, placed[0].offset);
    if (found < 0 || found >= placed[0].offset + placed[0].size)
      throw new Error("the init's data is not in the erofs image");
    writeAt(ddi, found + 100, Buffer.from([image[found + 100] ^ 0xff]));
  }
  if (opts.flipErofsByte !== undefined) {
    const at = placed[0].offset + opts.flipErofsByte;
    const b = readFileSync(ddi).subarray(at, at + 1);
    writeAt(ddi, at, Buffer.from([b[0] ^ 0xff]));
  }
  const esp = join(tmp, "esp.img");
  if (opts.omitDdi) writeFileSync(join(tmp, "README"), "no DDI here\n");
  buildEsp(
    esp,
    opts.omitDdi
      ? [{ src: join(tmp, "README"), path: "/README" }]
      : [{ src: ddi, path: opts.ddiPath ?? DEFAULT_DDI_PATH }],
  );
  const disk = join(tmp, "disk.img");
  gptImage(
    disk,
    [
      {
        data: esp,
        type: opts.noEsp ? "0fc63daf-8483-4772-8e79-3d69d8477de4" : PartitionType.ESP,
        uuid: ESP_PART_UUID,
        name: "ESP",
      },
    ],
    { powerOfTwo: opts.sdCard === true },
  );
  if (opts.corruptPrimaryGpt) writeAt(disk, 512, Buffer.from("NOT A GPT HEADER"));
  rmSync(join(tmp, "tree"), { recursive: true, force: true });
  for (const f of ["root.erofs", "root.verity", "esp.img", "marker"]) rmSync(join(tmp, f), { force: true });
  const result = {
    disk: join(dir, "disk.img"),
    ddi: join(dir, "root.raw"),
    rootHash: root.rootHash,
    espPartUuid: ESP_PART_UUID,
    dir,
    erofsOffsetInDdi: placed[0].offset,
    ...kept,
  };
  return publish(dir, tmp, result);
}

/**
 * A GPT disk at `out` whose one partition is an ESP (PARTUUID `espPartUuid`) holding `files`
 * [{ src, path }]: the UEFI boots put systemd-boot, the UKI and the DDI on it. Not cached: the
 * UKI changes with every build.
 */
export function buildEspDisk(out, files, { espPartUuid, spareBytes = 0 }) {
  const esp = `${out}.esp`;
  buildEsp(esp, files, spareBytes);
  gptImage(out, [{ data: esp, type: PartitionType.ESP, uuid: espPartUuid, name: "ESP" }]);
  rmSync(esp, { force: true });
  return out;
}

/**
 * A test key and its self-signed certificate (RSA 2048, SHA-256), made once under
 * .cache/keys/: "mok" is the key the MOK tests enroll, "other" one no machine trusts, "dkms" a
 * second MOK, as DKMS enrolls one beside the vendor's.
 * Returns { key, cert } (PEM files).
 */
export function testKey(name) {
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
export function certificateFingerprint(cert) {
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
 * tree with /etc/storage-init-version holding `version` and its os-release saying
 * IMAGE_VERSION=`version` (/usr/lib/os-release, /etc/os-release a link), its root-verity partition, and with
 * `signWith` ("mok", "other" or "dkms": testKey()) a root-verity-sig partition signed by that key.
 * `corruptSignature` flips a byte near the end of the PKCS#7 (its signature value), keeping the
 * JSON well-formed. Cached like buildDisk. Returns { ddi, rootHash, signed, fingerprint }.
 * @param {{ version?: string, signWith?: "mok" | "other" | "dkms", corruptSignature?: boolean, arch?: string }} [opts]
 */
export async function buildRepartDdi({ version = "1", signWith, corruptSignature = false, arch = "x86-64" } = {}) {
  const opts = { version, signWith, corruptSignature, arch };
  const dir = cacheDir("repart-", { IMAGE_FORMAT, repart: opts, sources: markerSources() });
  const done = cached(dir);
  if (done !== undefined) return done;
  const repart = systemdRepart();
  const tmp = workDir(dir);
  mkdirSync(join(tmp, "defs"));
  const { tree } = await buildMarkerTree(tmp, arch);
  writeFileSync(join(tree, "etc", "storage-init-version"), `${version}\n`);
  // As a distribution lays it out: the image's version in /usr/lib/os-release, /etc/os-release a link to it.
  mkdirSync(join(tree, "usr", "lib"), { recursive: true });
  writeFileSync(
    join(tree, "usr", "lib", "os-release"),
    `ID=storage-init-test\nPRETTY_NAME="storage-init test root"\nIMAGE_ID=root\nIMAGE_VERSION=${version}\n`,
  );
  rmSync(join(tree, "etc", "os-release"));
  symlinkSync("../usr/lib/os-release", join(tree, "etc", "os-release"));
  const defs = {
    "10-root.conf": `[Partition]\nType=root-${arch}\nFormat=erofs\nCopyFiles=${tree}:/\nVerity=data\nVerityMatchKey=root\nMinimize=best\n`,
    "20-root-verity.conf": `[Partition]\nType=root-${arch}-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n`,
  };
  if (signWith !== undefined)
    defs["30-root-verity-sig.conf"] =
      `[Partition]\nType=root-${arch}-verity-sig\nVerity=signature\nVerityMatchKey=root\n`;
  for (const [f, text] of Object.entries(defs)) writeFileSync(join(tmp, "defs", f), text);
  const signer = signWith === undefined ? undefined : testKey(signWith);
  const ddi = join(tmp, "root.raw");
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
      ddi,
    ],
    { env: repart.env },
  );
  const parts = JSON.parse(out);
  const rootHash = parts[0].roothash;
  if (typeof rootHash !== "string") throw new Error(`systemd-repart printed no root hash:\n${out}`);
  if (corruptSignature) {
    const sig = parts.find((p) => p.type.endsWith("-verity-sig"));
    const b = readFileSync(ddi);
    const text = b.toString("latin1", sig.offset, sig.offset + sig.raw_size);
    const json = text.slice(0, text.indexOf("\0"));
    const parsed = JSON.parse(json);
    const der = Buffer.from(parsed.signature, "base64");
    der[der.length - 8] ^= 0x01;
    const edited = json.replace(parsed.signature, der.toString("base64"));
    if (edited.length !== json.length) throw new Error("the corrupted signature changed length");
    writeAt(ddi, sig.offset, Buffer.from(edited, "latin1"));
  }
  rmSync(join(tmp, "tree"), { recursive: true, force: true });
  rmSync(join(tmp, "marker"), { force: true });
  const result = {
    ddi: join(dir, "root.raw"),
    rootHash,
    version,
    signed: signWith,
    fingerprint: signer === undefined ? undefined : certificateFingerprint(signer.cert),
    repart: repart.version,
  };
  return publish(dir, tmp, result);
}
