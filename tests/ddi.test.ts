import test from "ava";
import { InitError, ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { uuidFromHex } from "../lib/hex.js";
import { readDdi, readDdiLayout, selectDdiPartitions } from "../runtime/ddi.js";
import { parseGpt } from "../runtime/gpt.js";
import type { Gpt } from "../runtime/gpt.js";
import { FakeKernel } from "./fake_kernel.js";
import { fakeFingerprint, signatureJson, syntheticDdi } from "./fake_world.js";
import { reader, writeGpt } from "./helpers.js";
import type { GptPart } from "./helpers.js";

const HASH = "0123456789abcdef".repeat(4);
const ROOT_UUID = uuidFromHex(HASH.slice(0, 32));
const VERITY_UUID = uuidFromHex(HASH.slice(32));

function gpt(parts: GptPart[]): Gpt {
  const b = writeGpt(8 * 1048576, 512, parts);
  return parseGpt(reader(b), b.length);
}

const root = (uuid = ROOT_UUID, first = 2048, attrsHigh = 0): GptPart => ({
  type: PartitionType.ROOT_X86_64,
  uuid,
  first,
  last: first + 2047,
  name: "root",
  attrsHigh,
});
const verity = (uuid = VERITY_UUID, first = 6144): GptPart => ({
  type: PartitionType.ROOT_VERITY_X86_64,
  uuid,
  first,
  last: first + 2047,
  name: "verity",
});

test("selectDdiPartitions() picks root and root-verity for the architecture, pinned by roothash=", (t) => {
  const l = selectDdiPartitions(gpt([root(), verity()]), "x86-64", HASH, false);
  t.is(l.root.partGuid, ROOT_UUID);
  t.is(l.verity?.partition.partGuid, VERITY_UUID);
  t.is(l.verity?.rootHash, HASH);
});

test("selectDdiPartitions() refuses partitions whose UUIDs are not the halves of roothash=", (t) => {
  const other = uuidFromHex("ab".repeat(16));
  t.throws(() => selectDdiPartitions(gpt([root(other), verity()]), "x86-64", HASH, false), {
    any: true,
    instanceOf: ParseError,
    message: `root partition UUID ${other} does not match roothash= (expected ${ROOT_UUID})`,
  });
  t.throws(() => selectDdiPartitions(gpt([root(), verity(other)]), "x86-64", HASH, false), {
    any: true,
    message: `root-verity partition UUID ${other} does not match roothash= (expected ${VERITY_UUID})`,
  });
});

test("selectDdiPartitions() names a missing or doubled partition and an unknown architecture", (t) => {
  t.throws(() => selectDdiPartitions(gpt([verity()]), "x86-64", HASH, false), {
    any: true,
    message: `the DDI has no root partition for x86-64 (type ${PartitionType.ROOT_X86_64})`,
  });
  t.throws(() => selectDdiPartitions(gpt([root()]), "x86-64", HASH, false), {
    any: true,
    message: /^the DDI has no root-verity partition for x86-64/,
  });
  t.throws(() => selectDdiPartitions(gpt([root(), root(ROOT_UUID, 10240), verity()]), "x86-64", HASH, false), {
    any: true,
    message: `the DDI has two root partitions with UUID ${ROOT_UUID}: ambiguous`,
  });
  t.throws(
    () => selectDdiPartitions(gpt([root(), root(uuidFromHex("cd".repeat(16)), 10240)]), "x86-64", undefined, true),
    {
      any: true,
      message: "the DDI has 2 root (x86-64) partitions; expected one",
    },
  );
  t.throws(() => selectDdiPartitions(gpt([root(), verity()]), "arm64", HASH, false), {
    any: true,
    message: /^the DDI has no root partition for arm64/,
  });
  t.throws(() => selectDdiPartitions(gpt([root(), verity()]), "riscv64", HASH, false), {
    any: true,
    message: "no partition types known for architecture riscv64",
  });
  t.throws(() => selectDdiPartitions(gpt([root(), verity()]), "x86-64", undefined, false), {
    any: true,
    instanceOf: InitError,
    message: "no roothash= to verify the DDI with",
  });
});

test("selectDdiPartitions() skips partitions marked no-auto, and takes no verity partition with systemd.verity=0", (t) => {
  const l = selectDdiPartitions(
    gpt([root(ROOT_UUID, 2048, 0x80000000), root(ROOT_UUID, 10240), verity()]),
    "x86-64",
    HASH,
    false,
  );
  t.is(l.root.firstLba, 10240);
  t.is(selectDdiPartitions(gpt([root()]), "x86-64", undefined, true).verity, undefined);
});

test("readDdi() reads the GPT of the image file", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/root.raw", syntheticDdi(HASH));
  t.deepEqual(
    readDdi(k, "/esp/root.raw").partitions.map((p) => p.partGuid),
    [ROOT_UUID, VERITY_UUID],
  );
});

test("selectDdiPartitions() checks the UUIDs against any roothash= of 128 bits or more, as systemd does", (t) => {
  const sha1 = "0123456789abcdef0123456789abcdef01234567";
  const ok = gpt([root(uuidFromHex(sha1.slice(0, 32))), verity(uuidFromHex(sha1.slice(-32)))]);
  t.is(selectDdiPartitions(ok, "x86-64", sha1, false).verity?.rootHash, sha1);
  t.throws(() => selectDdiPartitions(gpt([root(), verity()]), "x86-64", sha1, false), {
    any: true,
    message: /^root-verity partition UUID .* does not match roothash=/,
  });
});

test("selectDdiPartitions() picks the root and verity pair that roothash= names among several (A/B)", (t) => {
  const other = "fedcba9876543210".repeat(4);
  const ab = gpt([
    root(uuidFromHex(other.slice(0, 32)), 2048),
    verity(uuidFromHex(other.slice(32)), 6144),
    root(ROOT_UUID, 10240),
    verity(VERITY_UUID, 12288),
  ]);
  const l = selectDdiPartitions(ab, "x86-64", HASH, false);
  t.is(l.root.firstLba, 10240);
  t.is(l.verity?.partition.firstLba, 12288);
  t.is(selectDdiPartitions(ab, "x86-64", other, false).root.firstLba, 2048);
  const third = "ab".repeat(32);
  t.throws(() => selectDdiPartitions(ab, "x86-64", third, false), {
    any: true,
    message: `none of the DDI's 2 root partitions has the UUID roothash= gives, ${uuidFromHex(third.slice(0, 32))}`,
  });
});

test("readDdi() names a directory, an empty file and a special file, and refuses a GPT at both sector sizes", (t) => {
  const k = new FakeKernel();
  k.mkdirp("/esp/dir.raw");
  k.addFile("/esp/empty.raw", "");
  k.addFile("/dev/null", "");
  (k.nodes.get("/dev/null") as { type: number }).type = 0o020000;
  t.throws(() => readDdi(k, "/esp/dir.raw"), {
    any: true,
    instanceOf: ParseError,
    message: '"/esp/dir.raw" is a directory, not a DDI image',
  });
  t.throws(() => readDdi(k, "/esp/empty.raw"), { any: true, message: '"/esp/empty.raw" is empty' });
  t.throws(() => readDdi(k, "/dev/null"), { any: true, message: '"/dev/null" is not a regular file' });
  const both = syntheticDdi(HASH);
  both.set(new TextEncoder().encode("EFI PART"), 4096);
  k.addFile("/esp/both.raw", both);
  t.throws(() => readDdi(k, "/esp/both.raw"), {
    any: true,
    message: "a GPT header at both 512 and 4096 bytes: refusing the ambiguous table",
  });
  // An entry a disk's search would skip makes a DDI unusable.
  k.addFile(
    "/esp/overlap.raw",
    writeGpt(4 * 1048576, 512, [
      { type: PartitionType.ROOT_X86_64, uuid: ROOT_UUID, first: 2048, last: 4095, name: "root" },
      { type: PartitionType.ROOT_VERITY_X86_64, uuid: VERITY_UUID, first: 4095, last: 6143, name: "verity" },
    ]),
  );
  t.throws(() => readDdi(k, "/esp/overlap.raw"), {
    any: true,
    instanceOf: ParseError,
    message: "partitions 1 and 2 overlap",
  });
  k.addFile(
    "/esp/overlaps.raw",
    writeGpt(4 * 1048576, 512, [
      { type: PartitionType.ROOT_X86_64, uuid: ROOT_UUID, first: 2048, last: 4095, name: "root" },
      { type: PartitionType.ROOT_VERITY_X86_64, uuid: VERITY_UUID, first: 4095, last: 6143, name: "verity" },
      { type: PartitionType.ROOT_VERITY_X86_64, uuid: VERITY_UUID, first: 6000, last: 6200, name: "again" },
    ]),
  );
  t.throws(() => readDdi(k, "/esp/overlaps.raw"), {
    any: true,
    message: "partitions 1 and 2 overlap; partitions 2 and 3 overlap",
  });
});

const SIGNED = { policy: "signed" as const, rootHash: undefined, verityDisabled: false };

test("readDdiLayout() takes the root hash from the signature partition under the signed policy, its signature for the kernel", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/root.raw", syntheticDdi(HASH, signatureJson(HASH, "signed")));
  const l = readDdiLayout(k, "/esp/root.raw", "x86-64", SIGNED);
  t.is(l.verity?.rootHash, HASH);
  t.is(l.verity?.partition.partGuid, VERITY_UUID);
  t.is(l.verity?.signature?.fingerprint, fakeFingerprint("fake"));
  t.true(
    Buffer.from(l.verity?.signature?.pkcs7 ?? [])
      .toString("latin1")
      .includes("signed:" + HASH),
  );
});

test("readDdiLayout() pinned by roothash= ignores a signature of another hash, and takes the one of its own", (t) => {
  const k = new FakeKernel();
  const other = "fedcba9876543210".repeat(4);
  k.addFile("/esp/other.raw", syntheticDdi(HASH, signatureJson(other, "signed")));
  k.addFile("/esp/own.raw", syntheticDdi(HASH, signatureJson(HASH, "signed")));
  const pinned = { policy: "verity" as const, rootHash: HASH, verityDisabled: false };
  t.is(readDdiLayout(k, "/esp/other.raw", "x86-64", pinned).verity?.signature, undefined);
  t.is(readDdiLayout(k, "/esp/own.raw", "x86-64", pinned).verity?.signature?.rootHash, HASH);
  t.throws(() => readDdiLayout(k, "/esp/other.raw", "x86-64", { ...SIGNED, rootHash: HASH }), {
    any: true,
    instanceOf: ParseError,
    message: `none of the DDI's root-verity-sig partitions signs roothash= ${HASH}`,
  });
});

test("readDdiLayout() refuses a malformed signature partition under either policy, naming the partition", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/bad.raw", syntheticDdi(HASH, '{"rootHash":"' + HASH + '"'));
  for (const want of [SIGNED, { policy: "verity" as const, rootHash: HASH, verityDisabled: false }]) {
    t.throws(() => readDdiLayout(k, "/esp/bad.raw", "x86-64", want), {
      any: true,
      message: /^partition [0-9a-f-]{36}: the root-verity-sig partition is not JSON: expected ',' or '}' at byte 78$/,
    });
  }
});

/**
 * A DDI of root and verity partitions for HASH and signature partitions of `sectors` each (the
 * JSON at each one's start, NUL-padded), with 0xff bytes from the end of the last one.
 */
function signedDdi(sectors: number[], hashes: string[] = sectors.map(() => HASH)): Uint8Array {
  let first = 8192;
  const sigs: GptPart[] = sectors.map((n, i) => {
    const p = { type: PartitionType.ROOT_VERITY_SIG_X86_64, uuid: sigUuid(i), first, last: first + n - 1, name: "sig" };
    first += n;
    return p;
  });
  const b = writeGpt(first * 512 + 1048576, 512, [root(), verity(), ...sigs]);
  sigs.forEach((p, i) => b.set(new TextEncoder().encode(signatureJson(hashes[i], "signed")), p.first * 512));
  b.fill(0xff, first * 512, b.length - 65536);
  return b;
}

const sigUuid = (i: number) => `5d3b9e2a-4c1f-4e8b-9a7d-2f6c8e1b0a9${i}`;

test("readDdiLayout() reads at most 4 signature partitions of at most 1 MiB, and only the first 64 KiB of each", (t) => {
  const k = new FakeKernel();
  const other = "fedcba9876543210".repeat(4);
  k.addFile("/esp/five.raw", signedDdi([8, 8, 8, 8, 8]));
  k.addFile("/esp/four.raw", signedDdi([8, 8, 8, 8], [other, other, other, HASH]));
  k.addFile("/esp/huge.raw", signedDdi([2049]));
  k.addFile("/esp/mib.raw", signedDdi([2048]));
  const pinned = { ...SIGNED, rootHash: HASH };
  t.throws(() => readDdiLayout(k, "/esp/five.raw", "x86-64", pinned), {
    any: true,
    message: "the DDI has 5 root-verity-sig partitions; at most 4 are read",
  });
  t.is(readDdiLayout(k, "/esp/four.raw", "x86-64", pinned).verity?.signature?.rootHash, HASH);
  t.throws(() => readDdiLayout(k, "/esp/huge.raw", "x86-64", SIGNED), {
    any: true,
    message: `root-verity-sig partition ${sigUuid(0)} has 1049088 bytes; at most 1048576 are taken`,
  });
  t.is(readDdiLayout(k, "/esp/mib.raw", "x86-64", SIGNED).verity?.rootHash, HASH, "1 MiB, of which 64 KiB are read");
  const small = signedDdi([8]);
  t.is(small[(8192 + 8) * 512], 0xff, "the bytes after the 4 KiB partition are not NULs");
  k.addFile("/esp/small.raw", small);
  t.is(readDdiLayout(k, "/esp/small.raw", "x86-64", SIGNED).verity?.rootHash, HASH, "nothing past its end is read");
});

test("readDdiLayout() names two signatures without roothash=, an unknown architecture and no roothash= to pin", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/two.raw", signedDdi([8, 8], [HASH, "fedcba9876543210".repeat(4)]));
  k.addFile("/esp/plain.raw", syntheticDdi(HASH));
  t.throws(() => readDdiLayout(k, "/esp/two.raw", "x86-64", SIGNED), {
    any: true,
    message: "the DDI has 2 root-verity-sig partitions; without roothash= one is expected",
  });
  t.throws(() => readDdiLayout(k, "/esp/two.raw", "riscv64", SIGNED), {
    any: true,
    message: "no partition types known for architecture riscv64",
  });
  t.throws(
    () =>
      readDdiLayout(k, "/esp/plain.raw", "x86-64", { policy: "verity", rootHash: undefined, verityDisabled: false }),
    {
      any: true,
      instanceOf: InitError,
      message: "no roothash= to verify the DDI with",
    },
  );
});

test("readDdiLayout() with systemd.verity=0 takes the root alone, with no roothash= and no signature read", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/bad-sig.raw", syntheticDdi(HASH, "{"));
  const l = readDdiLayout(k, "/esp/bad-sig.raw", "x86-64", {
    policy: "verity",
    rootHash: undefined,
    verityDisabled: true,
  });
  t.is(l.root.partGuid, ROOT_UUID);
  t.is(l.verity, undefined);
});

test("selectDdiPartitions() takes arm64's own partition types", (t) => {
  const arm = (p: GptPart, type: string) => ({ ...p, type });
  const l = selectDdiPartitions(
    gpt([arm(root(), PartitionType.ROOT_ARM64), arm(verity(), PartitionType.ROOT_VERITY_ARM64)]),
    "arm64",
    HASH,
    false,
  );
  t.is(l.root.partGuid, ROOT_UUID);
  t.is(l.verity?.partition.partGuid, VERITY_UUID);
});
