import test from "ava";
import { cmdlinePairs, ddiPathsOf, splitCmdline } from "../lib/cmdline_words.js";

test("splitCmdline() keeps quoted values and drops the quotes", (t) => {
  t.deepEqual(splitCmdline('a="b c" "d=e f"  g=\tlast'), ["a=b c", "d=e f", "g=", "last"]);
  t.deepEqual(splitCmdline('x="unterminated value'), ["x=unterminated value"]);
  t.deepEqual(splitCmdline('""'), [""]);
});

test("cmdlinePairs() gives keys with `_` for `-`, and undefined for a word without `=`", (t) => {
  t.deepEqual(cmdlinePairs("storage-init.ddi=/a quiet x=1=2"), [
    { key: "storage_init.ddi", value: "/a" },
    { key: "quiet", value: undefined },
    { key: "x", value: "1=2" },
  ]);
});

test("ddiPathsOf() takes every path of every storage_init.ddi=, in either spelling", (t) => {
  t.deepEqual(
    ddiPathsOf(
      'roothash=ab storage_init.ddi=/EFI/a.raw,/loader/extensions/b.raw storage-init.ddi="/c d.raw,/EFI/a.raw"',
    ),
    ["/EFI/a.raw", "/loader/extensions/b.raw", "/c d.raw"],
  );
  t.deepEqual(ddiPathsOf("quiet storage_init.ddi storage_init.ddi="), []);
});
