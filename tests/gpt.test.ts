import test from "ava";
import { ESP_PART_UUID } from "../qemu/test_disk.js";
import { ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { parseGpt } from "../runtime/gpt.js";
import type { Gpt } from "../runtime/gpt.js";
import { putU32le, putU64le } from "../lib/bytes.js";
import { resealGpt } from "./gpt_writer.js";
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

function gptError(t: import("ava").ExecutionContext, b: Uint8Array, size: number = b.length): string {
  const e = t.throws(() => parseGpt(reader(b), size), { any: true, instanceOf: ParseError }) as ParseError;
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
  t.regex(g.primaryProblem as string, /^partition entries CRC32 mismatch \(stored [0-9a-f]+, computed [0-9a-f]+\)$/);
});

test("parseGpt() reads a valid backup when the primary signature is missing", (t) => {
  const img = SGDISK.slice();
  img.fill(0, 512, 1024);
  t.like(parse(img), {
    usedHeader: "backup",
    primaryProblem: 'no "EFI PART" signature at LBA 1 (512- or 4096-byte sectors)',
  });
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
  t.is(
    gptError(t, new Uint8Array(100)),
    'no valid GPT: primary: no "EFI PART" signature at LBA 1 (512- or 4096-byte sectors); backup: the device is too small for a GPT (100 bytes)',
  );
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

test("parseGpt() checks each field of a header whose CRCs are valid, at and past each bound, and falls back to the backup", (t) => {
  // 8,192 sectors of 512 bytes; 128 entries of 128 bytes (32 sectors); usable 34..8158.
  const cases: Array<[string, number, number, number, string | undefined]> = [
    ["header size", 12, 4, 91, "header size 91 is outside 92..512"],
    ["header size", 12, 4, 92, undefined],
    ["header size", 12, 4, 512, undefined],
    ["header size", 12, 4, 513, "header size 513 is outside 92..512"],
    ["its own LBA", 24, 8, 2, "header at LBA 1 says it is at LBA 2"],
    ["entry size", 84, 4, 120, "partition entry size 120 is invalid"],
    ["entry size", 84, 4, 132, "partition entry size 132 is invalid"],
    ["entry size", 84, 4, 136, undefined],
    ["entry size", 84, 4, 4096, undefined],
    ["entry size", 84, 4, 4104, "partition entry size 4104 is invalid"],
    ["entry count", 80, 4, 8192, undefined],
    ["entry count", 80, 4, 8193, "8193 partition entries of 128 bytes exceed 1048576 bytes"],
    ["entries LBA", 72, 8, 1, "partition entries at LBA 1 lie outside the disk"],
    ["entries LBA", 72, 8, 2, undefined],
    ["entries LBA", 72, 8, 8160, undefined],
    ["entries LBA", 72, 8, 8161, "partition entries at LBA 8161 lie outside the disk"],
    ["first usable LBA", 40, 8, 8158, undefined],
    ["first usable LBA", 40, 8, 8159, "usable LBAs 8159..8158 do not fit the disk"],
    ["last usable LBA", 48, 8, 8191, undefined],
    ["last usable LBA", 48, 8, 8192, "usable LBAs 34..8192 do not fit the disk"],
  ];
  for (const [field, at, width, value, problem] of cases) {
    const img = writeGpt(4 * 1048576, 512, [
      { type: PartitionType.ESP, uuid: ESP_UUID, first: 2048, last: 4095, name: "ESP" },
    ]);
    if (width === 4) putU32le(img, 512 + at, value);
    else putU64le(img, 512 + at, value);
    // Entries moved are moved with the header's word for it (at 8160 over the backup's).
    if (field === "entries LBA" && problem === undefined) img.copyWithin(value * 512, 1024, 1024 + 16384);
    resealGpt(img);
    const g = parse(img);
    const what = `${field} ${value}`;
    t.is(g.primaryProblem, problem, what);
    t.is(g.usedHeader, problem === undefined ? "primary" : "backup", what);
    t.is(g.partitions.length + g.skipped.length, 1, what + ": the one entry read, taken or skipped");
  }
});

/** A 4 MiB disk of 512-byte sectors (usable 34..8158) with `parts` of the ESP type, by their ranges. */
const disk = (...parts: Array<[number, number]>) =>
  writeGpt(
    4 * 1048576,
    512,
    parts.map(([first, last], i) => ({ type: PartitionType.ESP, uuid: ESP_UUID, first, last, name: "p" + (i + 1) })),
  );

test("parseGpt() takes an entry from the first usable LBA to the last, one sector long, and nothing outside", (t) => {
  const g = parse(disk([34, 34], [35, 2047], [8158, 8158], [33, 40], [8100, 8159]));
  t.deepEqual(
    g.partitions.map((p) => [p.number, p.firstLba, p.lastLba, p.size]),
    [
      [1, 34, 34, 512],
      [2, 35, 2047, 2013 * 512],
      [3, 8158, 8158, 512],
    ],
  );
  t.deepEqual(g.skipped, [
    `partition 4 (type ${PartitionType.ESP}) spans LBA 33..40, outside the usable 34..8158`,
    `partition 5 (type ${PartitionType.ESP}) spans LBA 8100..8159, outside the usable 34..8158`,
  ]);
});

test("parseGpt() finds overlaps in any entry order, a shared sector included, and names exactly four", (t) => {
  t.deepEqual(parse(disk([6000, 6100], [2048, 4095])).skipped, [], "apart, the later range first");
  t.deepEqual(parse(disk([4095, 5000], [2048, 4095])).skipped, ["partitions 1 and 2 overlap"]);
  t.deepEqual(parse(disk([2048, 4095], [4095, 5000])).skipped, ["partitions 1 and 2 overlap"]);
  const four = parse(disk([2048, 8000], [2048, 2100], [3000, 3100], [4000, 4100], [5000, 5100]));
  t.deepEqual(four.skipped, [
    "partitions 1 and 2 overlap",
    "partitions 1 and 3 overlap",
    "partitions 1 and 4 overlap",
    "partitions 1 and 5 overlap",
  ]);
  t.deepEqual(four.partitions, []);
});

test("parseGpt() takes an entry as unused by its type GUID alone, and reads its attributes and a name of 36 characters", (t) => {
  const name = "abcdefghijklmnopqrstuvwxyz0123456789";
  const img = writeGpt(4 * 1048576, 512, [
    { type: "00000000-0000-0000-0000-000000000000", uuid: ROOT_UUID, first: 2048, last: 2100, name: "unused" },
    {
      type: "12345600-0000-4000-8000-000000000001",
      uuid: ROOT_UUID,
      first: 3000,
      last: 3100,
      name,
      attrsHigh: 0x90000000,
    },
  ]);
  const g = parse(img);
  t.deepEqual(
    g.partitions.map((p) => [p.number, p.typeGuid, p.attrsHigh, p.name]),
    [[2, "12345600-0000-4000-8000-000000000001", 0x90000000, name]],
  );
  // 136-byte entries: the name is still the 72 bytes at 56, not the 80 up to the entry's end.
  const wide = writeGpt(4 * 1048576, 512, [{ type: PartitionType.ESP, uuid: ESP_UUID, first: 2048, last: 2100, name }]);
  putU32le(wide, 512 + 84, 136);
  for (let i = 0; i < 4; i++) wide[1024 + 128 + 2 * i] = 0x41 + i;
  resealGpt(wide);
  t.is(parse(wide).partitions[0].name, name);
  t.false(parse(wide).kernelPartitions, "Linux partitions by 128-byte entries only");
});

test("parseGpt() says whether the MBR is protective: 0x55aa and a partition of type 0xee in any of its four slots", (t) => {
  const img = disk([2048, 4095]);
  img[446 + 4] = 0x83;
  t.false(parse(img).kernelPartitions, "a legacy MBR");
  img[446 + 3 * 16 + 4] = 0xee;
  t.true(parse(img).kernelPartitions, "0xee in the fourth slot");
  img[511] = 0;
  t.false(parse(img).kernelPartitions, "no 0x55aa");
});

test("parseGpt() names a device that reads short: its header, its entries", (t) => {
  const img = disk([2048, 4095]);
  t.is(
    gptError(t, img.subarray(0, 600), img.length),
    'no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)',
  );
  t.is(
    gptError(t, img.subarray(0, 1124), img.length),
    'no valid GPT: primary: partition entries are truncated (100 of 16384 bytes); backup: no "EFI PART" signature at LBA 8191',
  );
});

test("parseGpt() names both problems when the backup fails too: its entries, its header", (t) => {
  const entries = disk([2048, 4095]);
  entries[512 + 30] ^= 0xff;
  entries[entries.length - 33 * 512] ^= 1;
  t.regex(
    gptError(t, entries),
    /^no valid GPT: primary: header CRC32 mismatch at LBA 1 \(stored [0-9a-f]+, computed [0-9a-f]+\); backup: partition entries CRC32 mismatch \(stored [0-9a-f]+, computed [0-9a-f]+\)$/,
  );
  entries.fill(0, 512, 1024);
  t.regex(
    gptError(t, entries),
    /^no valid GPT: primary: no "EFI PART" signature at LBA 1 \(512- or 4096-byte sectors\); backup: partition entries CRC32 mismatch/,
    "no primary signature, but a backup header: not 'no GPT'",
  );
  const header = disk([2048, 4095]);
  header.fill(0, 512, 1024);
  header[header.length - 512 + 30] ^= 0xff;
  t.regex(
    gptError(t, header),
    /^no valid GPT: primary: no "EFI PART" signature at LBA 1 \(512- or 4096-byte sectors\); backup: header CRC32 mismatch at LBA 8191 /,
  );
  const small = writeGpt(8192, 512, [], 4);
  small.fill(0, 512, 1024);
  small[8192 - 512 + 30] ^= 0xff;
  t.regex(
    gptError(t, small),
    /; backup: header CRC32 mismatch at LBA 15 /,
    "the backup's problem, not that 4096-byte sectors do not fit 8 KiB",
  );
});

test("parseGpt() refuses a header at both 512 and 4096 bytes, where both sector sizes fit the device", (t) => {
  const both = disk([2048, 4095]);
  both.set(both.subarray(512, 520), 4096);
  t.is(gptError(t, both), "a GPT header at both 512 and 4096 bytes: refusing the ambiguous table");
  // 8 KiB: two sectors of 4096 bytes, too few for a table of that size; the 512-byte table stands.
  const small = writeGpt(8192, 512, [], 4);
  small.set(small.subarray(512, 520), 4096);
  t.is(parse(small).sectorSize, 512);
});

test("parseGpt() reads a GPT on three sectors, the fewest there can be, and names a smaller device's size", (t) => {
  const img = new Uint8Array(1536);
  img.set(writeGpt(4 * 1048576, 512, [], 4).subarray(512, 1024), 512);
  putU64le(img, 512 + 32, 2); // the alternate header's LBA: not checked
  putU64le(img, 512 + 40, 2);
  putU64le(img, 512 + 48, 2);
  resealGpt(img);
  t.like(parse(img), { sectorSize: 512, usedHeader: "primary", partitions: [] });
  t.is(
    gptError(t, img.subarray(0, 1535)),
    'no valid GPT: primary: no "EFI PART" signature at LBA 1 (512- or 4096-byte sectors); backup: the device is too small for a GPT (1535 bytes)',
  );
});
