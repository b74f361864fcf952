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

test("isDeviceAlias() drops aliases no device modalias can match", (t) => {
  t.false(isDeviceAlias("block-major-8-*"));
  t.false(isDeviceAlias("fs-vfat"));
  t.true(isDeviceAlias("pci:v*d*sv*sd*bc01sc08i02*"));
});

const DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-mod.ko:
`;
const ALIAS = `alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias block-major-254-* virtio_blk
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias fs-erofs erofs
`;
const SOFTDEP = "softdep libcrc32c pre: crc32c\n";

test("buildModuleTable() writes the closure in load order, softdeps first, and device aliases only", (t) => {
  const idx = parseKernelModules(DEP, ALIAS, "kernel/drivers/virtio/virtio_ring.ko\n", SOFTDEP);
  const r = buildModuleTable(idx, ["virtio_pci", "virtio_blk", "nvme"], [{ group: "erofs", names: ["erofs"] }, { group: "verity", names: ["dm_verity"] }]);
  t.deepEqual(r.missing, ["nvme"]);
  t.is(
    r.text,
    [
      "storage-init-modules 1",
      "m virtio virtio.ko -",
      "m virtio_pci virtio_pci.ko virtio",
      "m virtio_blk virtio_blk.ko virtio",
      "m crc32c_generic crc32c_generic.ko -",
      "m libcrc32c libcrc32c.ko crc32c_generic",
      "m erofs erofs.ko crc32c_generic,libcrc32c",
      "m dm_mod dm-mod.ko -",
      "m dm_verity dm-verity.ko dm_mod",
      "a virtio_pci pci:v00001AF4d*sv*sd*bc*sc*i*",
      "a virtio_blk virtio:d00000002v*",
      "g erofs erofs",
      "g verity dm_verity",
      "",
    ].join("\n"),
  );
  t.deepEqual(r.files.map((f) => f.file), ["virtio.ko", "virtio_pci.ko", "virtio_blk.ko", "crc32c_generic.ko", "libcrc32c.ko", "erofs.ko", "dm-mod.ko", "dm-verity.ko"]);
  const table = parseModuleTable(r.text);
  t.deepEqual(matchModalias("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", table), ["virtio_pci"]);
  t.deepEqual(matchModalias("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", table), []);
  t.deepEqual(loadOrder("erofs", table, new Set()).map((m) => m.name), ["crc32c_generic", "libcrc32c", "erofs"]);
  t.deepEqual(loadOrder("erofs", table, new Set(["crc32c_generic"])).map((m) => m.name), ["libcrc32c", "erofs"]);
});

test("the table for Debian's kernel maps QEMU's storage devices to their drivers", (t) => {
  const dir = readdirKernel();
  if (dir === undefined) {
    t.pass("kernel not fetched in this checkout");
    return;
  }
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  const idx = parseKernelModules(read("modules.dep"), read("modules.alias"), read("modules.builtin"), read("modules.softdep"));
  const r = buildModuleTable(idx, ["virtio_pci", "virtio_blk", "virtio_scsi", "nvme", "ahci", "sd_mod"], []);
  const table = parseModuleTable(r.text);
  t.deepEqual(matchModalias("pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", table), ["nvme"]);
  t.deepEqual(matchModalias("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", table), ["ahci"]);
  t.deepEqual(matchModalias("virtio:d00000008v00001AF4", table), ["virtio_scsi"]);
  t.deepEqual(matchModalias("scsi:t-0x00", table), ["sd_mod"]);
  t.deepEqual(loadOrder("nvme", table, new Set()).map((m) => m.name).slice(-2), ["nvme_core", "nvme"]);
});

function readdirKernel(): string | undefined {
  try {
    const base = join(process.cwd(), ".cache", "kernel");
    for (const pkg of readdirSync(base)) {
      const mods = join(base, pkg, "root", "lib", "modules");
      for (const v of readdirSync(mods)) return join(mods, v);
    }
  } catch (e) {
    return undefined;
  }
  return undefined;
}

test("parseModuleTable() rejects malformed tables, naming the line", (t) => {
  const bad = (text: string) => (t.throws(() => parseModuleTable(text), { any: true, instanceOf: ParseError }) as ParseError).message;
  t.is(bad("nonsense"), 'module table: first line is not "storage-init-modules 1"');
  t.is(bad("storage-init-modules 1\nm a a.ko\n"), "module table line 2 is malformed: m a a.ko");
  t.is(bad("storage-init-modules 1\nm a ../../etc/passwd -\n"), "module table line 2 is malformed: m a ../../etc/passwd -");
  t.is(bad("storage-init-modules 1\nm a a.ko b\n"), "module table: a depends on b, which is not in the table");
  t.is(bad("storage-init-modules 1\na x pci:*\n"), "module table: alias for unknown module x");
  t.is(bad("storage-init-modules 1\ng loop loop\n"), "module table: group loop names unknown module loop");
});

test("parseModuleTable() on 10,000 mutated tables returns a table or a ParseError", (t) => {
  const good = "storage-init-modules 1\nm virtio virtio.ko -\nm virtio_blk virtio_blk.ko virtio\na virtio_blk virtio:d00000002v*\ng loop virtio\n";
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
