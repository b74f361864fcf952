import test from "ava";
import { InitError, ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { uuidFromHex } from "../lib/hex.js";
import { readDdi, selectDdiPartitions } from "../runtime/ddi.js";
import { parseGpt } from "../runtime/gpt.js";
import type { Gpt } from "../runtime/gpt.js";
import { FakeKernel } from "./fake_kernel.js";
import { syntheticDdi } from "./fake_world.js";
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
    message: /^the DDI has no root partition for x86-64 \(type 4f68bce3-/,
  });
  t.throws(() => selectDdiPartitions(gpt([root()]), "x86-64", HASH, false), {
    any: true,
    message: /^the DDI has no root-verity partition for x86-64/,
  });
  t.throws(() => selectDdiPartitions(gpt([root(), root(ROOT_UUID, 10240), verity()]), "x86-64", HASH, false), {
    any: true,
    message: "the DDI has 2 root (x86-64) partitions; expected one",
  });
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
