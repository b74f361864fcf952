/**
 * A FakeKernel machine for whole-boot tests, shared by tests/main.test.ts (Node) and
 * tests/native/fakeboot_prog.ts (the same boot compiled by porffor): one virtio disk with a GPT
 * whose ESP holds a DDI, devices that appear as their drivers load, and emulated mounts.
 * No Node imports: it must compile natively.
 */
import { encodeBase64 } from "../lib/base64.js";
import { putU32le, putU64le, utf8Encode } from "../lib/bytes.js";
import { PartitionType } from "../lib/facts.js";
import { uuidFromHex } from "../lib/hex.js";
import { sha256Hex } from "../lib/sha256.js";
import { Log } from "../runtime/log.js";
import { ARCH_TYPES } from "../runtime/ddi.js";
import { ARCH } from "../runtime/build_facts.js";
import { boot } from "../runtime/main.js";
import { VerityField } from "../runtime/verity.js";
import { FakeKernel, FakeStop } from "./fake_kernel.js";
import { writeGpt } from "./gpt_writer.js";
import { ESP_PART_UUID } from "../qemu/test_disk.js";

export const TABLE = `storage-init-modules 2 6.1.0-test
m virtio virtio.ko -
m virtio_pci virtio_pci.ko virtio
m virtio_blk virtio_blk.ko virtio
m fat fat.ko -
m vfat vfat.ko fat
m loop loop.ko -
m dm_mod dm-mod.ko -
m dm_verity dm-verity.ko dm_mod
m erofs erofs.ko -
a virtio_pci pci:v00001AF4d*sv*sd*bc*sc*i*
a virtio_blk virtio:d00000002v*
g vfat vfat
g loop loop
g verity dm_verity
g erofs erofs
`;

export interface WorldOptions {
  ddi: Uint8Array;
  /** Files on the ESP (path -> bytes); default: the DDI at the default path. */
  espFiles?: Map<string, Uint8Array>;
  noDisk?: boolean;
  primaryBroken?: boolean;
  /** The disk's bytes instead of the usual GPT disk with its ESP (worldDisk() makes that one). */
  disk?: Uint8Array;
  /** A second disk: a clone of worldDisk() (the same PARTUUID) whose ESP holds these files. */
  cloneEspFiles?: Map<string, Uint8Array>;
  /** The clone's name: "vdb" (after vda) by default; "sda" sorts before vda, as a USB stick would. */
  cloneName?: string;
  /** Called once a root is mounted and filled (init, os-release): lets a test change what it holds. */
  onRootMount?: (k: FakeKernel, target: string, osRelease: string) => void;
}

/** The world's disk: 4 MiB, a GPT with the ESP as partition 1 (1 MiB at 1 MiB). */
export function worldDisk(): Uint8Array {
  return writeGpt(4 * 1048576, 512, [
    { type: PartitionType.ESP, uuid: ESP_PART_UUID, first: 2048, last: 6143, name: "ESP" },
  ]);
}

export interface World {
  k: FakeKernel;
  /** Runs boot() to its end: FakeStop("exec") or FakeStop("halted") after the final action. */
  run: () => FakeStop;
}

/** Where in a synthetic root partition its os-release text lies (NUL-terminated), if it has one. */
const ROOT_OS_RELEASE_AT = 8192;

const SIG_PART_UUID = "5d3b9e2a-4c1f-4e8b-9a7d-2f6c8e1b0a93";

/** A DER element: `tag`, its length, `parts` one after another. */
function der(tag: number, parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const head = n < 128 ? [tag, n] : n < 256 ? [tag, 0x81, n] : [tag, 0x82, n >> 8, n & 255];
  const out = new Uint8Array(head.length + n);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const bytes = (list: number[]) => new Uint8Array(list);
/** OIDs, their DER contents: sha256, rsaEncryption, data, signedData, commonName. */
const OID_SHA256 = bytes([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
const OID_RSA = bytes([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
const OID_DATA = bytes([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);
const OID_SIGNED_DATA = bytes([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
const OID_CN = bytes([0x55, 0x04, 0x03]);

/** Fake signers: a certificate each, shaped as X.509 is where pkcs7Signer() looks (the rest is empty). */
export type FakeSigner = "fake" | "other";

function fakeName(signer: FakeSigner): Uint8Array {
  const cn = utf8Encode("storage-init " + signer + " key");
  return der(0x30, [der(0x31, [der(0x30, [der(0x06, [OID_CN]), der(0x0c, [cn])])])]);
}

function fakeSerial(signer: FakeSigner): Uint8Array {
  return der(0x02, [bytes(signer === "fake" ? [0x01, 0x23] : [0x45, 0x67])]);
}

function fakeCertificate(signer: FakeSigner): Uint8Array {
  const name = fakeName(signer);
  const alg = der(0x30, [der(0x06, [OID_RSA])]);
  const tbs = der(0x30, [
    der(0xa0, [der(0x02, [bytes([2])])]),
    fakeSerial(signer),
    alg,
    name,
    der(0x30, []),
    name,
    der(0x30, []),
  ]);
  return der(0x30, [tbs, alg, der(0x03, [bytes([0])])]);
}

/** The SHA-256 fingerprint of a fake signer's certificate, as storage_init.certificate_fingerprint= names it. */
export function fakeFingerprint(signer: FakeSigner): string {
  return sha256Hex(fakeCertificate(signer));
}

/** The command line word that pins the fake signer "fake". */
export const FAKE_PIN = "storage_init.certificate_fingerprint=" + fakeFingerprint("fake");

/**
 * A DER PKCS#7 SignedData by `signer`: its certificate, one SignerInfo naming it, and `text` as
 * the signature value (FakeKernel reads its verdict from that text).
 */
function fakePkcs7(signer: FakeSigner, text: string): Uint8Array {
  const digest = der(0x30, [der(0x06, [OID_SHA256])]);
  const signerInfo = der(0x30, [
    der(0x02, [bytes([1])]),
    der(0x30, [fakeName(signer), fakeSerial(signer)]),
    digest,
    der(0x30, [der(0x06, [OID_RSA])]),
    der(0x04, [utf8Encode(text)]),
  ]);
  const signedData = der(0x30, [
    der(0x02, [bytes([1])]),
    der(0x31, [digest]),
    der(0x30, [der(0x06, [OID_DATA])]),
    der(0xa0, [fakeCertificate(signer)]),
    der(0x31, [signerInfo]),
  ]);
  return der(0x30, [der(0x06, [OID_SIGNED_DATA]), der(0xa0, [signedData])]);
}

/**
 * The JSON of a root-verity-sig partition for `rootHash`, signed by `signer`: FakeKernel trusts a
 * signature whose value is "signed:" + the hash (`trust` "signed"), and refuses "untrusted:"
 * (ENOKEY) and any other (EKEYREJECTED). The certificateFingerprint is the signer's, unless
 * `fingerprint` claims another.
 */
export function signatureJson(
  rootHash: string,
  trust: "signed" | "untrusted" | "corrupted",
  signer: FakeSigner = "fake",
  fingerprint: string = fakeFingerprint(signer),
): string {
  const text = (trust === "corrupted" ? "xigned:" : trust + ":") + rootHash;
  const b64 = encodeBase64(fakePkcs7(signer, text));
  return '{"rootHash":"' + rootHash + '","signature":"' + b64 + '","certificateFingerprint":"' + fingerprint + '"}';
}

/**
 * A DDI for the architecture the boot is built for (ARCH), shaped like the real one (GPT, root + root-verity partitions with UUIDs from the root
 * hash, an erofs superblock, a veritysetup superblock) for 16 data blocks; the fake device
 * mapper checks no hashes. With `signature`, a root-verity-sig partition holds it.
 */
export function syntheticDdi(
  rootHash: string,
  signature: string | undefined = undefined,
  osRelease: string | undefined = undefined,
): Uint8Array {
  const sig =
    signature === undefined
      ? []
      : [
          {
            type: ARCH_TYPES[ARCH].rootVeritySig,
            uuid: SIG_PART_UUID,
            first: 6144,
            last: 6151,
            name: "root-x86-64-verity-sig",
          },
        ];
  const ddi = writeGpt(4 * 1048576, 512, [
    {
      type: ARCH_TYPES[ARCH].root,
      uuid: uuidFromHex(rootHash.slice(0, 32)),
      first: 2048,
      last: 4095,
      name: "root-x86-64",
    },
    {
      type: ARCH_TYPES[ARCH].rootVerity,
      uuid: uuidFromHex(rootHash.slice(32)),
      first: 4096,
      last: 6143,
      name: "root-x86-64-verity",
    },
    ...sig,
  ]);
  // The signature partition (at 3 MiB): the JSON, NUL-padded to 4 KiB.
  if (signature !== undefined)
    for (let i = 0; i < signature.length; i++) ddi[3 * 1048576 + i] = signature.charCodeAt(i);
  // The root's /usr/lib/os-release, inside the verified data (its third block): world() makes
  // it a file of the mounted root.
  if (osRelease !== undefined)
    for (let i = 0; i < osRelease.length; i++) ddi[1048576 + ROOT_OS_RELEASE_AT + i] = osRelease.charCodeAt(i);
  // The root partition (at 1 MiB) starts like an erofs image of 16 blocks of 4 KiB.
  putU32le(ddi, 1048576 + 1024, 0xe0f5e1e2);
  ddi[1048576 + 1024 + 12] = 12;
  putU32le(ddi, 1048576 + 1024 + 36, 16);
  const sb = 2 * 1048576;
  const magic = "verity\0\0";
  for (let i = 0; i < 8; i++) ddi[sb + VerityField.SIGNATURE + i] = magic.charCodeAt(i);
  putU32le(ddi, sb + VerityField.VERSION, 1);
  putU32le(ddi, sb + VerityField.HASH_TYPE, 1);
  const alg = "sha256";
  for (let i = 0; i < alg.length; i++) ddi[sb + VerityField.ALGORITHM + i] = alg.charCodeAt(i);
  putU32le(ddi, sb + VerityField.DATA_BLOCK_SIZE, 4096);
  putU32le(ddi, sb + VerityField.HASH_BLOCK_SIZE, 4096);
  putU64le(ddi, sb + VerityField.DATA_BLOCKS, 16);
  ddi[sb + VerityField.SALT_SIZE] = 4;
  ddi.set([0xde, 0xad, 0xbe, 0xef], sb + VerityField.SALT);
  return ddi;
}

export function world(cmdline: string, opts: WorldOptions): World {
  const k = new FakeKernel();
  k.addFile("/proc/cmdline", cmdline + "\n");
  k.processArgv = ["/init", "single"];
  k.processEnv = ["HOME=/", "TERM=linux"];
  k.addFile("/proc/sys/kernel/printk_devkmsg", "ratelimit\n");
  k.addFile("/dev/kmsg", "");
  k.addFile("/dev/loop-control", "");
  k.addFile("/dev/mapper/control", "");
  k.mkdirp("/sys/class/block");
  k.addFile("/modules/table", TABLE);
  for (const f of ["virtio", "virtio_pci", "virtio_blk", "fat", "vfat", "loop", "dm-mod", "dm-verity", "erofs"])
    k.addFile("/modules/" + f + ".ko", "\x7fELF");
  k.addBusDevice("pci", "0000:00:01.0", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01");
  k.addBusDevice("pci", "0000:00:02.0", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00");
  const disk = opts.disk ?? worldDisk();
  if (opts.primaryBroken) disk.fill(0, 512, 1024);
  k.onModuleLoaded = (name) => {
    if (name === "virtio_pci") k.addBusDevice("virtio", "virtio0", "virtio:d00000002v00001AF4");
    if (name === "virtio_blk" && !opts.noDisk)
      k.addDisk("vda", disk, opts.primaryBroken ? [] : [[1, 1048576, 2097152]]);
    if (name === "virtio_blk" && opts.cloneEspFiles !== undefined)
      k.addDisk(opts.cloneName ?? "vdb", worldDisk(), [[1, 1048576, 2097152]]);
  };
  const espFiles = opts.espFiles ?? new Map([["/EFI/storage-init/root.raw", opts.ddi]]);
  k.onMount = (m) => {
    if (m.fstype === "vfat")
      for (const [p, data] of m.source === "/dev/" + (opts.cloneName ?? "vdb") + "1"
        ? (opts.cloneEspFiles ?? espFiles)
        : espFiles)
        k.addFile(m.target + p, data);
    if (m.fstype === "erofs") {
      for (const d of ["/dev", "/proc", "/sys", "/run"]) k.mkdirp(m.target + d);
      k.addFile(m.target + "/sbin/init", "\x7fELF", 0o755);
      const data = k.nodes.get(m.source)?.data;
      let text = "";
      for (let i = ROOT_OS_RELEASE_AT; data !== undefined && i < data.length && data[i] !== 0; i++)
        text += String.fromCharCode(data[i]);
      if (text !== "") k.addFile(m.target + "/usr/lib/os-release", text);
      if (opts.onRootMount !== undefined) opts.onRootMount(k, m.target, text);
    }
    if (m.fstype === "overlay") {
      // The lower layer's tree shows through (writes would go to the upper one).
      const lower = (/lowerdir=([^,]*)/.exec(m.data) ?? ["", ""])[1];
      for (const [p, n] of [...k.nodes])
        if (p.startsWith(lower + "/")) k.nodes.set(m.target + p.slice(lower.length), n);
    }
  };
  const run = (): FakeStop => {
    try {
      boot(k, new Log(k));
    } catch (e) {
      if (e instanceof FakeStop) return e;
      throw e;
    }
    if (k.execs.length === 1) return new FakeStop("exec", k.execs[0].path);
    throw new Error("boot() returned without exec");
  };
  return { k, run };
}

/** The log lines written (kmsg records and console), without their level prefix. */
export function logLines(k: FakeKernel): string[] {
  return k
    .logText()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (l[0] === "<" && l[2] === ">" ? l.slice(3) : l));
}
