import test from "ava";
import { createReadOnlyDevice, decodeDmReply, DmFlags, dmStatusText, encodeDmIoctl } from "../runtime/devmapper.js";
import { FakeKernel } from "./fake_kernel.js";
import { rng } from "./helpers.js";
import { u32le, u64le } from "../lib/bytes.js";
import { InitError } from "../lib/errors.js";

test("encodeDmIoctl() lays out struct dm_ioctl and the target spec byte for byte", (t) => {
  const params = "1 7:0 7:1";
  const b = encodeDmIoctl({
    name: "root",
    uuid: "U",
    flags: DmFlags.READONLY,
    targets: [{ start: 0, length: 2048, type: "verity", params }],
    reserve: 0,
  });
  t.is(b.length, 312 + 40 + 16);
  t.deepEqual([u32le(b, 0), u32le(b, 4), u32le(b, 8)], [4, 0, 0]);
  t.is(u32le(b, 12), b.length, "data_size");
  t.is(u32le(b, 16), 312, "data_start");
  t.is(u32le(b, 20), 1, "target_count");
  t.is(u32le(b, 28), 1, "flags");
  t.is(String.fromCharCode(...b.subarray(48, 52)), "root");
  t.is(b[52], 0);
  t.is(b[176], "U".charCodeAt(0));
  t.is(u64le(b, 312), 0, "sector_start");
  t.is(u64le(b, 320), 2048, "length");
  t.is(u32le(b, 332), 0, "next");
  t.is(String.fromCharCode(...b.subarray(336, 342)), "verity");
  t.is(String.fromCharCode(...b.subarray(352, 352 + params.length)), params);
  t.is(b[352 + params.length], 0);
  t.regex(
    (
      t.throws(() => encodeDmIoctl({ name: "x".repeat(128), uuid: "", flags: 0, targets: [], reserve: 0 }), {
        any: true,
      }) as InitError
    ).message,
    /^device-mapper field too long: x+$/,
  );
});

test("decodeDmReply() decodes the huge_encode_dev device number", (t) => {
  const b = new Uint8Array(312);
  b[40] = 0x05;
  b[41] = 0xfd; // major 253, minor 5
  t.like(decodeDmReply(b), { major: 253, minor: 5 });
});

const VERITY = { start: 0, length: 2048, type: "verity", params: "1 7:0 7:1 4096 4096 256 1 sha256 ab 00" };
const VERIFIED = { status: "V", meaning: "verified" };

test("createReadOnlyDevice() creates, loads read-only and resumes, then checks the status", (t) => {
  const k = new FakeKernel();
  k.addFile("/dev/mapper/control", "");
  const dev = createReadOnlyDevice(k, "root", "U", VERITY, VERIFIED);
  t.deepEqual(dev, { name: "root", path: "/dev/dm-0", major: 253, minor: 0 });
  t.deepEqual(k.dmTables, ["1 7:0 7:1 4096 4096 256 1 sha256 ab 00"]);
  t.deepEqual(
    k.ioctls.map((i) => i.request.toString(16)),
    ["c138fd00", "c138fd03", "c138fd09", "c138fd06", "c138fd0c"],
  );
});

test("createReadOnlyDevice() removes the device when the status is not the one expected", (t) => {
  const k = new FakeKernel();
  k.addFile("/dev/mapper/control", "");
  k.verityStatus = "C";
  t.throws(() => createReadOnlyDevice(k, "root", "U", VERITY, VERIFIED), {
    any: true,
    message: 'dm-verity device root reports status "C" instead of V (verified)',
  });
  t.is(k.ioctls[k.ioctls.length - 1].request.toString(16), "c138fd04");
});

test("decodeDmReply() and dmStatusText() survive 10,000 random replies", (t) => {
  const next = rng(13);
  for (let i = 0; i < 10000; i++) {
    const b = new Uint8Array(312 + (next() % 200));
    for (let j = 0; j < 40; j++) b[next() % b.length] = next() & 0xff;
    const r = decodeDmReply(b);
    // dev_t as the kernel's huge_encode_dev() packs it (12 bits of major at 8, the minor around
    // it), decoded here byte by byte.
    const want = { major: b[41] | ((b[42] & 0x0f) << 8), minor: b[40] | ((b[42] >> 4) << 8) | (b[43] << 12) };
    t.deepEqual({ major: r.major, minor: r.minor }, want);
    t.is(typeof dmStatusText(b), "string");
  }
});
