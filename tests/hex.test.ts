import test from "ava";
import { guidToBytes, guidToString } from "../lib/hex.js";
import { PartitionType } from "../lib/facts.js";

test("guidToString() and guidToBytes() round-trip the mixed-endian layout", (t) => {
  const b = guidToBytes(PartitionType.ESP) as Uint8Array;
  t.deepEqual(Array.from(b.subarray(0, 4)), [0x28, 0x73, 0x2a, 0xc1]);
  t.is(guidToString(b, 0), PartitionType.ESP);
  t.is(guidToBytes("not-a-guid"), undefined);
  t.is(guidToBytes("c12a7328-f81f-11d2-ba4b-00a0c93ec93g"), undefined);
});
