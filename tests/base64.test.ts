import test from "ava";
import { decodeBase64, encodeBase64 } from "../lib/base64.js";
import { rng } from "./rng.js";

test("decodeBase64() agrees with Node's Buffer on 2,000 random inputs, and encodeBase64() round-trips", (t) => {
  const next = rng(7);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(next() % 40);
    for (let j = 0; j < b.length; j++) b[j] = next() & 255;
    const text = Buffer.from(b).toString("base64");
    t.is(encodeBase64(b), text);
    const d = decodeBase64(text);
    t.deepEqual(d.bytes, b, text);
  }
});

test("decodeBase64() refuses white space, foreign characters, misplaced padding and set padding bits", (t) => {
  t.is(decodeBase64("QUJD\n").error, "its length 5 is not a multiple of 4");
  t.is(decodeBase64("QU D").error, "a character outside the base64 alphabet at 2");
  t.is(decodeBase64("QU-D").error, "a character outside the base64 alphabet at 2");
  t.is(decodeBase64("Q=JD").error, "a character outside the base64 alphabet at 1");
  t.is(decodeBase64("QUI=QUJD").error, "a character outside the base64 alphabet at 3");
  t.is(decodeBase64("QUJ=").error, "bits set in its padding", "QUJ= leaves bits of J unused");
  t.is(decodeBase64("QR==").error, "bits set in its padding");
  t.deepEqual(decodeBase64("QUI=").bytes, new Uint8Array([65, 66]));
  t.deepEqual(decodeBase64("").bytes, new Uint8Array(0));
});
