import test from "ava";
import { kmsgRecord } from "../runtime/log.js";

test("kmsgRecord() carries the level, folds newlines and bounds the length", (t) => {
  t.is(kmsgRecord(3, "a\nb"), "<3>storage-init: a b\n");
  const long = kmsgRecord(6, "x".repeat(5000));
  t.is(long.length, 977);
  t.true(long.endsWith("...\n"));
});
