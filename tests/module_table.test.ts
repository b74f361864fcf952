import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ParseError } from "../lib/errors.js";
import { globMatch, loadOrder, matchModalias, moduleName, parseModuleTable } from "../runtime/module_table.js";
import { buildModuleTable, isDeviceAlias, parseKernelModules } from "../toolchain/module_closure.js";
import { rng } from "./helpers.js";

test("moduleName() strips the directory and .ko suffixes and uses _", (t) => {
  t.is(moduleName("kernel/drivers/md/dm-verity.ko"), "dm_verity");
  t.is(moduleName("kernel/fs/erofs/erofs.ko.xz"), "erofs");
  t.is(moduleName("crc-t10dif.ko.zst"), "crc_t10dif");
});

test("globMatch() follows fnmatch for the globs modules.alias uses", (t) => {
  t.true(globMatch("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"));
  t.false(globMatch("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF5d00001001sv00001AF4sd00000002bc01sc00i00"));
  t.true(globMatch("virtio:d00000002v*", "virtio:d00000002v00001AF4"));
  t.true(globMatch("acpi*:PNP0A0[38]:*", "acpi:PNP0A08:"));
  t.false(globMatch("acpi*:PNP0A0[38]:*", "acpi:PNP0A05:"));
  t.true(globMatch("scsi:t-0x0[0-7]*", "scsi:t-0x05"));
  t.true(globMatch("x[!a-c]y", "xdy"));
  t.false(globMatch("x[!a-c]y", "xby"));
  t.true(globMatch("a?c", "abc"));
  t.true(globMatch("a\\*c", "a*c"));
  t.false(globMatch("a\\*c", "abc"));
  t.true(globMatch("a[]]b", "a]b"), "] first in a set is literal");
  t.true(globMatch("a[b", "a[b"), "an unterminated [ is literal");
  t.true(globMatch("**", ""));
  t.false(globMatch("", "x"));
  t.true(globMatch("*a*a*a*a*a*b", "a".repeat(40) + "b"));
  t.false(globMatch("*a*a*a*a*a*b", "a".repeat(2000)), "no exponential backtracking");
});

test("parseModuleTable() rejects malformed tables, naming the line", (t) => {
  const bad = (text: string) =>
    (t.throws(() => parseModuleTable(text), { any: true, instanceOf: ParseError }) as ParseError).message;
  t.is(bad("nonsense"), 'module table: first line is not "storage-init-modules 1"');
  t.is(bad("storage-init-modules 1\nm a a.ko\n"), "module table line 2 is malformed: m a a.ko");
  t.is(
    bad("storage-init-modules 1\nm a ../../etc/passwd -\n"),
    "module table line 2 is malformed: m a ../../etc/passwd -",
  );
  t.is(bad("storage-init-modules 1\nm a a.ko b\n"), "module table: a depends on b, which is not in the table");
  t.is(bad("storage-init-modules 1\na x pci:*\n"), "module table: alias for unknown module x");
  t.is(bad("storage-init-modules 1\ng loop loop\n"), "module table: group loop names unknown module loop");
});

test("parseModuleTable() on 10,000 mutated tables returns a table or a ParseError", (t) => {
  const good =
    "storage-init-modules 1\nm virtio virtio.ko -\nm virtio_blk virtio_blk.ko virtio\na virtio_blk virtio:d00000002v*\ng loop virtio\n";
  const next = rng(99);
  const chars = " \nmag-,*.k/virtio_blk0";
  let ok = 0;
  for (let i = 0; i < 10000; i++) {
    const a = good.split("");
    const edits = 1 + (next() % 4);
    for (let j = 0; j < edits; j++) {
      const at = next() % a.length;
      const op = next() % 3;
      if (op === 0) a[at] = chars[next() % chars.length];
      else if (op === 1) a.splice(at, 1);
      else a.splice(at, 0, chars[next() % chars.length]);
    }
    try {
      const tb = parseModuleTable(a.join(""));
      matchModalias("virtio:d00000002v00001AF4", tb);
      ok++;
    } catch (e) {
      if (!(e instanceof ParseError)) t.fail(`mutation ${i}: ${String(e)}`);
    }
  }
  t.true(ok > 0);
});
