import test from "ava";
import { createHash } from "node:crypto";
import { sha256Hex } from "../lib/sha256.js";
import { rng } from "./helpers.js";

test("sha256Hex() gives FIPS 180-4's digests of the empty string and 'abc'", (t) => {
  t.is(sha256Hex(new Uint8Array(0)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  t.is(sha256Hex(new TextEncoder().encode("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("sha256Hex() agrees with node:crypto on 2,000 random inputs of every length around the block edges", (t) => {
  const next = rng(256);
  for (let i = 0; i < 2000; i++) {
    const n = i < 200 ? i : next() % 5000;
    const b = new Uint8Array(n + 7);
    for (let j = 0; j < b.length; j++) b[j] = next() & 255;
    const want = createHash("sha256")
      .update(b.subarray(3, 3 + n))
      .digest("hex");
    if (sha256Hex(b, 3, 3 + n) !== want) t.fail(`length ${n}`);
  }
  t.pass();
});
