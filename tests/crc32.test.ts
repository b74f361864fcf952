import test from "ava";
import { crc32 } from "../lib/crc32.js";

test("crc32() matches the IEEE check value", (t) => {
  t.is(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});
