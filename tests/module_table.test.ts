import test from "ava";
import { join } from "node:path";
import { ParseError } from "../lib/errors.js";
import { globMatch, matchModalias, moduleName, parseModuleTable } from "../runtime/module_table.js";
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
  t.is(bad("nonsense"), 'module table: first line is not "storage-init-modules 2 <kernel release>"');
  t.is(bad("storage-init-modules 2 6.1.0\nm a a.ko\n"), "module table line 2 is malformed: m a a.ko");
  t.is(
    bad("storage-init-modules 2 6.1.0\nm a ../../etc/passwd -\n"),
    "module table line 2 is malformed: m a ../../etc/passwd -",
  );
  t.is(bad("storage-init-modules 2 6.1.0\nm a a.ko b\n"), "module table: a depends on b, which is not in the table");
  t.is(bad("storage-init-modules 2 6.1.0\na x pci:*\n"), "module table: alias for unknown module x");
  t.is(bad("storage-init-modules 2 6.1.0\ng loop loop\n"), "module table: group loop names unknown module loop");
});

test("parseModuleTable() on 10,000 mutated tables returns a table or a ParseError", (t) => {
  const good =
    "storage-init-modules 2 6.1.0\nm virtio virtio.ko -\nm virtio_blk virtio_blk.ko virtio\na virtio_blk virtio:d00000002v*\ng loop virtio\n";
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

test("parseModuleTable() reads the kernel release of the header, and refuses a header without one", (t) => {
  t.is(parseModuleTable("storage-init-modules 2 6.1.0-57-amd64\n").release, "6.1.0-57-amd64");
  for (const header of [
    "storage-init-modules 2",
    "storage-init-modules 2 ",
    "storage-init-modules 2 a b",
    "storage-init-modules 1 6.1.0",
  ])
    t.throws(() => parseModuleTable(header + "\n"), { any: true, instanceOf: ParseError }, header);
});

// The matcher as it was written first, on one-character strings: the reference for the one on
// code units (porffor compiles character codes far more compactly).
function stringGlob(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length) {
      const c = pattern[p];
      if (c === "*") {
        starP = p++;
        starT = t;
        continue;
      }
      if (c === "?") {
        p++;
        t++;
        continue;
      }
      if (c === "[") {
        const r = stringSet(pattern, p, text[t]);
        if (r > 0) {
          p = r;
          t++;
          continue;
        }
        if (r === 0 && text[t] === "[") {
          // An unterminated `[` is a literal.
          p++;
          t++;
          continue;
        }
      } else if (c === "\\" && p + 1 < pattern.length) {
        if (pattern[p + 1] === text[t]) {
          p += 2;
          t++;
          continue;
        }
      } else if (c === text[t]) {
        p++;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    t = ++starT;
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}
function stringSet(pattern: string, open: number, ch: string): number {
  let i = open + 1;
  let negate = false;
  if (i < pattern.length && (pattern[i] === "!" || pattern[i] === "^")) {
    negate = true;
    i++;
  }
  let matched = false;
  let first = true;
  while (i < pattern.length && (first || pattern[i] !== "]")) {
    first = false;
    let lo = pattern[i];
    if (lo === "\\" && i + 1 < pattern.length) lo = pattern[++i];
    if (i + 2 < pattern.length && pattern[i + 1] === "-" && pattern[i + 2] !== "]") {
      let hi = pattern[i + 2];
      i += 2;
      if (hi === "\\" && i + 1 < pattern.length) hi = pattern[++i];
      if (ch >= lo && ch <= hi) matched = true;
    } else if (ch === lo) matched = true;
    i++;
  }
  if (i >= pattern.length) return 0;
  return matched !== negate ? i + 1 : -1;
}

test("globMatch() agrees with the string-by-string matcher on 20,000 random patterns and texts", (t) => {
  const next = rng(11);
  const alphabet = "ab[]!^-*?\\c";
  const pick = (n: number) => {
    let s = "";
    for (let i = next() % n; i > 0; i--) s += alphabet[next() % alphabet.length];
    return s;
  };
  let matches = 0;
  for (let i = 0; i < 20000; i++) {
    const pattern = pick(9);
    const text = pick(7);
    const want = stringGlob(pattern, text);
    if (globMatch(pattern, text) !== want)
      t.fail(`${JSON.stringify(pattern)} ${JSON.stringify(text)}: expected ${want}`);
    if (want) matches++;
  }
  t.true(matches > 300, `${matches} matches among them`);
});
