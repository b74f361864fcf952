import test from "ava";

test("splitNul() decodes argv as UTF-8, so execve passes the same bytes on", async (t) => {
  const { cStringList, splitNul } = await import("../lib/bytes.js");
  const raw = new Uint8Array([0x2f, 0x69, 0x6e, 0x69, 0x74, 0, 0x63, 0x61, 0x66, 0xc3, 0xa9, 0, 0x78, 0, 0x79]);
  const argv = splitNul(raw, 14);
  t.deepEqual(argv, ["/init", "caf\u00e9", "x"]);
  t.deepEqual(Array.from(cStringList(argv)), Array.from(raw.subarray(0, 14)));
  t.deepEqual(splitNul(raw, raw.length), ["/init", "caf\u00e9", "x"], "an unterminated tail is not a string");
});
