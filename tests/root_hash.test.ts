import test from "ava";
import { checkRootHash } from "../lib/root_hash.js";

test("checkRootHash() takes 32 to 128 hex digits, an even number, and gives them in lower case", (t) => {
  for (const n of [32, 40, 64, 128]) t.deepEqual(checkRootHash("aB".repeat(n / 2)), { hash: "ab".repeat(n / 2) });
});

test("checkRootHash() says what is wrong with odd, short, long, non-hex and empty hashes", (t) => {
  t.deepEqual(checkRootHash("abc"), { error: "has an odd number of digits (3)" });
  t.deepEqual(checkRootHash("ab".repeat(15)), { error: "has 30 digits; expected 32 to 128" });
  t.deepEqual(checkRootHash("ab".repeat(65)), { error: "has 130 digits; expected 32 to 128" });
  t.deepEqual(checkRootHash("g".repeat(64)), { error: 'is not hexadecimal: "' + "g".repeat(64) + '"' });
  t.deepEqual(checkRootHash(""), { error: "is empty" });
});
