import test from "ava";
import { ESP_PART_UUID } from "../qemu/test_disk.js";
import { ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { parseGpt } from "../runtime/gpt.js";
import type { Gpt } from "../runtime/gpt.js";
import { reader, rng, sgdiskImage, writeGpt } from "./helpers.js";

const ESP_UUID = ESP_PART_UUID;
const ROOT_UUID = "01234567-89ab-cdef-0123-456789abcdef";
// Made by sgdisk once; every test gets its own copy.
const SGDISK = sgdiskImage(4, [
  [PartitionType.ESP, ESP_UUID, "ESP", 2048, 4095],
  [PartitionType.ROOT_X86_64, ROOT_UUID, "root-x86-64", 4096, 6143],
]);

function parse(b: Uint8Array): Gpt {
  return parseGpt(reader(b), b.length);
}

function gptError(t: import("ava").ExecutionContext, b: Uint8Array): string {
  const e = t.throws(() => parse(b), { any: true, instanceOf: ParseError }) as ParseError;
  t.true(e instanceof ParseError);
  return e.message;
}

test("parseGpt() reads what sgdisk wrote", (t) => {
  const g = parse(SGDISK.slice());
  t.is(g.sectorSize, 512);
  t.is(g.usedHeader, "primary");
  t.is(g.diskGuid, "11111111-2222-3333-4444-555555555555");
  t.deepEqual(
    g.partitions.map((p) => [p.number, p.typeGuid, p.partGuid, p.firstLba, p.lastLba, p.offset, p.size, p.name]),
    [
      [1, PartitionType.ESP, ESP_UUID, 2048, 4095, 1048576, 1048576, "ESP"],
      [2, PartitionType.ROOT_X86_64, ROOT_UUID, 4096, 6143, 2097152, 1048576, "root-x86-64"],
    ],
  );
});

test("writeGpt() of the tests writes what sgdisk writes (the same parse)", (t) => {
  const ours = writeGpt(4 * 1048576, 512, [
    { type: PartitionType.ESP, uuid: ESP_UUID, first: 2048, last: 4095, name: "ESP" },
    { type: PartitionType.ROOT_X86_64, uuid: ROOT_UUID, first: 4096, last: 6143, name: "root-x86-64" },
  ]);
  t.deepEqual(parse(ours).partitions, parse(SGDISK.slice()).partitions);
});

test("parseGpt() handles 4096-byte sectors", (t) => {
  const img = writeGpt(8 * 1048576, 4096, [
    { type: PartitionType.ESP, uuid: ESP_UUID, first: 256, last: 511, name: "ESP" },
  ]);
  const g = parse(img);
  t.is(g.sectorSize, 4096);
  t.is(g.partitions[0].offset, 1048576);
  t.is(g.partitions[0].size, 1048576);
});

test("parseGpt() falls back to the backup when the primary header is damaged, saying why", (t) => {
  const img = SGDISK.slice();
  img[512 + 30] ^= 0xff; // inside the header: CRC mismatch
  const g = parse(img);
  t.is(g.usedHeader, "backup");
  t.regex(g.primaryProblem as string, /^header CRC32 mismatch at LBA 1 \(stored [0-9a-f]+, computed [0-9a-f]+\)$/);
  t.is(g.partitions.length, 2);
});

test("parseGpt() falls back to the backup entries when the primary entries are damaged", (t) => {
  const img = SGDISK.slice();
  img[1024 + 20] ^= 1;
  const g = parse(img);
  t.is(g.usedHeader, "backup");
  t.regex(g.primaryProblem as string, /^partition entries CRC32 mismatch/);
});

test("parseGpt() reads a valid backup when the primary signature is missing", (t) => {
  const img = SGDISK.slice();
  img.fill(0, 512, 1024);
  t.is(parse(img).usedHeader, "backup");
});

test("parseGpt() with both headers damaged throws one error naming both problems", (t) => {
  const img = SGDISK.slice();
  img[512 + 30] ^= 0xff;
  img[img.length - 512 + 30] ^= 0xff;
  t.regex(
    gptError(t, img),
    /^no valid GPT: primary: header CRC32 mismatch at LBA 1 .*; backup: header CRC32 mismatch at LBA 8191 /,
  );
});

test("parseGpt() says so of no GPT at all, a truncated image and a tiny device", (t) => {
  t.is(
    gptError(t, new Uint8Array(1048576)),
    'no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)',
  );
  t.regex(
    gptError(t, SGDISK.slice(0, 2048)),
    /^no valid GPT: primary: partition entries lie outside the disk|^no valid GPT: primary: partition entries at LBA 2 lie outside the disk/,
  );
  t.regex(gptError(t, new Uint8Array(100)), /too small for a GPT/);
});

test("parseGpt() leaves out overlapping and out-of-range entries, naming them, as Linux skips them", (t) => {
  const overlap = writeGpt(4 * 1048576, 512, [
    { type: PartitionType.ESP, uuid: ESP_UUID, first: 2048, last: 4095, name: "a" },
    { type: PartitionType.ESP, uuid: ROOT_UUID, first: 4000, last: 5000, name: "b" },
    { type: PartitionType.ESP, uuid: ROOT_UUID, first: 6000, last: 6100, name: "c" },
  ]);
  const o = parse(overlap);
  t.deepEqual(
    o.partitions.map((p) => p.number),
    [3],
  );
  t.deepEqual(o.skipped, ["partitions 1 and 2 overlap"]);
  const outside = writeGpt(4 * 1048576, 512, [
    { type: PartitionType.ESP, uuid: ESP_UUID, first: 2048, last: 9000, name: "a" },
    { type: PartitionType.ESP, uuid: ROOT_UUID, first: 5000, last: 4000, name: "b" },
  ]);
  const x = parse(outside);
  t.deepEqual(x.partitions, []);
  t.deepEqual(x.skipped, [
    "partition 1 (type c12a7328-f81f-11d2-ba4b-00a0c93ec93b) spans LBA 2048..9000, outside the usable 34..8158",
    "partition 2 (type c12a7328-f81f-11d2-ba4b-00a0c93ec93b) spans LBA 5000..4000, outside the usable 34..8158",
  ]);
});

test("parseGpt() reads the first 255 entries, as Linux, and counts overlaps past the first four", (t) => {
  // 300 entries, all over the same sectors: a table made to make the overlap check slow.
  const parts = [];
  for (let i = 0; i < 300; i++)
    parts.push({ type: PartitionType.ESP, uuid: ESP_UUID, first: 4096, last: 6143, name: "x" });
  const g = parse(writeGpt(8 * 1048576, 512, parts, 512));
  t.deepEqual(g.partitions, []);
  t.deepEqual(g.skipped, [
    "entries past the 255th (Linux reads no more)",
    "partitions 1 and 2 overlap",
    "partitions 1 and 3 overlap",
    "partitions 1 and 4 overlap",
    "partitions 1 and 5 overlap",
    `and ${(255 * 254) / 2 - 4} more overlapping pairs`,
  ]);
});

test("parseGpt() reads 2,048 entries (Linux does) and refuses more than 1 MiB of them", (t) => {
  const many = writeGpt(
    8 * 1048576,
    512,
    [{ type: PartitionType.ESP, uuid: ESP_UUID, first: 4096, last: 6143, name: "a" }],
    2048,
  );
  t.deepEqual(
    parse(many).partitions.map((p) => p.number),
    [1],
  );
  const huge = writeGpt(16 * 1048576, 512, [], 8200);
  t.regex(gptError(t, huge), /8200 partition entries of 128 bytes exceed 1048576 bytes/);
});

test("parseGpt() on 10,000 mutated images returns a table or a ParseError, nothing else", (t) => {
  const next = rng(42);
  let parsed = 0;
  let rejected = 0;
  const base = SGDISK.subarray(0, 64 * 1024);
  for (let i = 0; i < 10000; i++) {
    const img = base.slice();
    const flips = 1 + (next() % 8);
    for (let j = 0; j < flips; j++) {
      // Mostly the headers and entries, where the interesting fields are.
      const at = next() % 2 === 0 ? 512 + (next() % 1536) : next() % img.length;
      img[at] = next() & 0xff;
    }
    const size = next() % 4 === 0 ? next() % img.length : img.length;
    try {
      const g = parseGpt(reader(img.subarray(0, size)), size);
      for (const p of g.partitions) t.true(p.offset + p.size <= size, "partition inside the device");
      parsed++;
    } catch (e) {
      if (!(e instanceof ParseError)) t.fail(`mutation ${i} threw ${String(e)}`);
      rejected++;
    }
  }
  t.is(parsed + rejected, 10000);
  t.true(rejected > 0);
});

test("parseGpt() says whether Linux partitions the disk by the table: a primary, 128-byte entries, a protective MBR", (t) => {
  const img = writeGpt(4 * 1048576, 512, [
    { type: PartitionType.ESP, uuid: ESP_UUID, first: 2048, last: 4095, name: "ESP" },
  ]);
  t.true(parse(img).kernelPartitions);
  const noMbr = img.slice();
  noMbr[510] = 0;
  t.false(parse(noMbr).kernelPartitions, "no protective MBR");
  const damaged = img.slice();
  damaged.fill(0, 512, 1024);
  t.false(parse(damaged).kernelPartitions, "the backup header");
  t.true(parse(SGDISK).kernelPartitions, "what sgdisk writes");
});
