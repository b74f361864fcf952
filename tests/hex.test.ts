import test from "ava";
import { guidToBytes, guidToString, isGuid, isHex } from "../lib/hex.js";
import { PartitionType } from "../lib/facts.js";
import { rng } from "./rng.js";

test("guidToString() and guidToBytes() round-trip the mixed-endian layout", (t) => {
  const b = guidToBytes(PartitionType.ESP) as Uint8Array;
  t.deepEqual(Array.from(b.subarray(0, 4)), [0x28, 0x73, 0x2a, 0xc1]);
  t.is(guidToString(b, 0), PartitionType.ESP);
  t.is(guidToBytes("not-a-guid"), undefined);
  t.is(guidToBytes("c12a7328-f81f-11d2-ba4b-00a0c93ec93g"), undefined);
});

test("isGuid() takes 8-4-4-4-12 hex digits in either case and nothing else", (t) => {
  t.true(isGuid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"));
  t.true(isGuid("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"));
  for (const s of [
    "",
    "c12a7328f81f11d2ba4b00a0c93ec93b",
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93",
    "g12a7328-f81f-11d2-ba4b-00a0c93ec93b",
    "c12a7328-f81f-11d2-ba4b_00a0c93ec93b",
  ])
    t.false(isGuid(s), s);
  const next = rng(3);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(16).map(() => next() & 0xff);
    const g = guidToString(b, 0);
    t.true(isGuid(g) && guidToBytes(g) !== undefined);
    const broken = g.slice(0, i % 36) + "xz-"[i % 3] + g.slice((i % 36) + 1);
    t.is(isGuid(broken), guidToBytes(broken) !== undefined, broken);
  }
});

test("isHex() takes hex digits in either case and nothing else", (t) => {
  t.true(isHex("0123456789abcdefABCDEF"));
  t.true(isHex(""));
  for (const bad of ["g", "0x1", " a", "a-b", "\u00e9"]) t.false(isHex(bad), bad);
});
