import test from "ava";
import {
  compareEntries,
  compareVersions,
  imageVersionRefusal,
  imageVersionWarning,
  listDdis,
  parseVpickName,
  readVpickDir,
  versionProblem,
} from "../runtime/vpick.js";
import { isVpickDir } from "../lib/facts.js";
import type { VpickEntry } from "../runtime/vpick.js";
import { FakeKernel } from "./fake_kernel.js";

test("compareVersions() orders as systemd's strverscmp_improved() and the UAPI specification's examples", (t) => {
  const same = [
    ["11", "11"],
    ["systemd-123", "systemd-123"],
    ["1_", "1"],
    ["_1", "1"],
    ["1+", "1"],
    ["+1", "1"],
    ["11α", "11β"],
    ["007", "7"],
  ];
  for (const [a, b] of same) t.is(compareVersions(a, b), 0, `${a} == ${b}`);
  const older = [
    ["bar-123", "foo-123"],
    ["123", "123a"],
    ["123", "123.a"],
    ["123.a", "123.b"],
    ["123.a", "123a"],
    ["A", "a"],
    ["", "0"],
    ["0", "0."],
    ["0", "0.0"],
    ["", "~"],
    ["1_", "1.2"],
    ["1.3.3", "1_2_3"],
    ["1+", "1.2"],
    ["1.3.3", "1+2+3"],
    ["1.9", "1.10"],
    ["1.0~rc1", "1.0"],
    ["1.0", "1.0^patch1"],
    ["1.0-1", "1.0.1"],
    ["99999999999999999999", "100000000000000000000"],
    ["1~", "1~~"],
    ["1~", "1~a"],
    ["1.0^1", "1.0.1"],
    ["1A", "1Z"],
    ["1", "1A"],
    ["1", "1z"],
    ["a.1", "a0"],
    ["a1", "ab"],
  ];
  for (const [a, b] of older) {
    t.true(compareVersions(a, b) < 0, `${a} < ${b}`);
    t.true(compareVersions(b, a) > 0, `${b} > ${a}`);
  }
});

// systemd's src/test/test-strverscmp.c: every version older than each one after it.
const SYSTEMD_ORDER = [
  "",
  "~1",
  "ab",
  "abb",
  "abc",
  "0001",
  "002",
  "12",
  "122",
  "122.9",
  "123~rc1",
  "123",
  "123-a",
  "123-a.1",
  "123-a1",
  "123-a1.1",
  "123-3",
  "123-3.1",
  "123^patch1",
  "123^1",
  "123.a-1",
  "123.1-1",
  "123a-1",
  "124",
];
// The same file's pairs, newer first.
const SYSTEMD_PAIRS = [
  ["123.45-67.89", "123.45-67.88"],
  ["123.45-67.89a", "123.45-67.89"],
  ["123.45-67.89", "123.45-67.ab"],
  ["123.45-67.89", "123.45-67.9"],
  ["123.45-67.89", "123.45-67"],
  ["123.45-67.89", "123.45-66.89"],
  ["123.45-67.89", "123.45-9.99"],
  ["123.45-67.89", "123.42-99.99"],
  ["123.45-67.89", "123-99.99"],
  ["123.45-67.89", "123~rc1-99.99"],
  ["123-45.67.89", "123~rc1-99.99"],
  ["123~rc2-67.89", "123~rc1-99.99"],
  ["123^aa2-67.89", "123~rc1-99.99"],
  ["123aa2-67.89", "123~rc1-99.99"],
  ["123.45-67.89", "123-99.99"],
  ["123^aa2-67.89", "123-99.99"],
  ["123aa2-67.89", "123-99.99"],
  ["123.45-67.89", "123^45-67.89"],
  ["123^aa2-67.89", "123^aa1-99.99"],
  ["123aa2-67.89", "123^aa2-67.89"],
  ["123aa2-67.89", "123.aa2-67.89"],
  ["123.ab2-67.89", "123.aa2-67.89"],
];

test("compareVersions() passes systemd's own tests of strverscmp_improved()", (t) => {
  const bad: string[] = [];
  const check = (newer: string, older: string) => {
    if (compareVersions(newer, older) <= 0) bad.push(`${newer} > ${older}`);
    if (compareVersions(older, newer) >= 0) bad.push(`${older} < ${newer}`);
    if (compareVersions(newer, newer) !== 0) bad.push(`${newer} == ${newer}`);
  };
  for (let i = 0; i < SYSTEMD_ORDER.length; i++)
    for (let j = i + 1; j < SYSTEMD_ORDER.length; j++) check(SYSTEMD_ORDER[j], SYSTEMD_ORDER[i]);
  for (const [newer, older] of SYSTEMD_PAIRS) check(newer, older);
  t.deepEqual(bad, []);
  t.is(compareVersions("123_aa2-67.89", "123aa+2-67.89"), 0, "characters outside the format are skipped");
});

test("versionProblem() takes a-z A-Z 0-9 . - ~ ^ up to 128 characters", (t) => {
  t.is(versionProblem("azAZ09.-~^"), "");
  t.is(versionProblem("a".repeat(128)), "");
  t.is(versionProblem("a".repeat(129)), "is empty or longer than 128");
  t.is(versionProblem(""), "is empty or longer than 128");
  for (const c of ["@", "[", "`", "{", "/", ":", "_", "+"])
    t.is(versionProblem("1" + c), `"1${c}" has a character outside a-z A-Z 0-9 . - ~ ^`, c);
});

test("parseVpickName() reads VERSION, _ARCH and +LEFT-DONE, and says why a name is not an entry", (t) => {
  t.deepEqual(parseVpickName("root", ".raw", "root_1.2.raw"), {
    file: "root_1.2.raw",
    version: "1.2",
    arch: "",
    triesLeft: -1,
    triesDone: 0,
  });
  t.deepEqual(parseVpickName("root", ".raw", "root_1.2_arm64+2-1.raw"), {
    file: "root_1.2_arm64+2-1.raw",
    version: "1.2",
    arch: "arm64",
    triesLeft: 2,
    triesDone: 1,
  });
  t.deepEqual(parseVpickName("root", ".raw", "root_3~rc1_x86-64+0.raw"), {
    file: "root_3~rc1_x86-64+0.raw",
    version: "3~rc1",
    arch: "x86-64",
    triesLeft: 0,
    triesDone: 0,
  });
  t.is(parseVpickName("root", ".raw", "usr_1.raw"), "not named root_VERSION.raw");
  t.is(parseVpickName("root", ".raw", "root_.raw"), "not named root_VERSION.raw");
  t.is(parseVpickName("root", ".raw", "root_1.raw.tmp"), "not named root_VERSION.raw");
  t.is(parseVpickName("root", ".raw", "root_1+x.raw"), 'its boot counter "+x" is not +LEFT or +LEFT-DONE');
  t.is(parseVpickName("root", ".raw", "root_1+01.raw"), 'its boot counter "+01" is not +LEFT or +LEFT-DONE');
  t.is(parseVpickName("root", ".raw", "root_1_vax.raw"), 'its architecture "vax" is not one systemd names');
  t.is(parseVpickName("root", ".raw", "root_1 2.raw"), 'its version "1 2" has a character outside a-z A-Z 0-9 . - ~ ^');
  t.is(parseVpickName("root", ".raw", "root__x86-64.raw"), "its version is empty or longer than 128");
  t.is(parseVpickName("root", ".raw", "rootfs_1.raw"), "not named root_VERSION.raw");
  t.is(parseVpickName("root", ".raw", "root_+1.raw"), "its version is empty or longer than 128");
  t.is(
    parseVpickName("root", ".raw", "root_1_x86.raw").toString(),
    "[object Object]",
    "x86: the first name of the table",
  );
  for (const arch of ["64", "x86-6", "x86 arm"])
    t.is(parseVpickName("root", ".raw", `root_1_${arch}.raw`), `its architecture "${arch}" is not one systemd names`);
  const counted = (file: string) => {
    const e = parseVpickName("root", ".raw", file);
    return typeof e === "string" ? e : [e.triesLeft, e.triesDone];
  };
  t.deepEqual(counted("root_1+2.raw"), [2, 0]);
  t.deepEqual(counted("root_1+10-12.raw"), [10, 12]);
  t.deepEqual(counted("root_1+123456789-0.raw"), [123456789, 0], "nine digits");
  for (const bad of ["+1234567890", "+", "+-1", "+1-", "+1-x", "+1-01", "+1-1234567890"])
    t.is(counted(`root_1${bad}.raw`), `its boot counter "${bad}" is not +LEFT or +LEFT-DONE`, bad);
  t.true(isVpickDir("/EFI/os/root.v") && isVpickDir("/EFI/os/root.v/") && !isVpickDir("/EFI/os/root.raw"));
});

test("compareEntries() puts entries with no tries left last, then newest first", (t) => {
  const e = (version: string, triesLeft: number): VpickEntry => ({
    file: version,
    version,
    arch: "",
    triesLeft,
    triesDone: 0,
  });
  const list = [e("1", -1), e("3", 0), e("2", 1), e("2", 3), e("10", -1)];
  list.sort(compareEntries);
  t.deepEqual(
    list.map((x) => x.version + "/" + x.triesLeft),
    ["10/-1", "2/3", "2/1", "1/-1", "3/0"],
  );
});

test("readVpickDir() lists the entries to try, newest first, then what it passed over and why", (t) => {
  const k = new FakeKernel();
  for (const f of ["root_1.raw", "root_2_arm64.raw", "root_2_x86-64.raw", "readme", "root_9+0-3.raw"])
    k.addFile("/esp/EFI/os/root.v/" + f, "x");
  k.mkdirp("/esp/EFI/os/root.v/root_5.raw");
  const out = readVpickDir(k, "/esp", "/EFI/os/root.v/", "x86-64", ".raw");
  t.deepEqual(
    out.map((c) => [c.path.slice("/EFI/os/root.v/".length), c.skipped]),
    [
      ["root_2_x86-64.raw", ""],
      ["root_1.raw", ""],
      ["root_9+0-3.raw", ""],
      ["root_2_arm64.raw", "for arm64, not x86-64"],
      ["readme", "not named root_VERSION.raw"],
      ["root_5.raw", "not a regular file"],
    ],
  );
  for (let i = 0; i < 1000; i++) k.addFile("/esp/many.v/root_" + i + ".raw", "x");
  t.throws(() => readVpickDir(k, "/esp", "/many.v", "x86-64", ".raw"), {
    any: true,
    message: "/many.v holds more than 64 names; at most that many are read",
  });
  t.is(k.readdirLimits[k.readdirLimits.length - 1], 64, "the directory is read only to the cap");
  for (let i = 0; i < 64; i++) k.addFile("/esp/full.v/root_" + i + ".raw", "x");
  t.is(readVpickDir(k, "/esp", "/full.v", "x86-64", ".raw").length, 64, "64 names: all of them");
});

test("readVpickDir() takes an entry whose type the file system does not say (DT_UNKNOWN)", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/root.v/root_1.raw", "x");
  const readdir = k.readdir.bind(k);
  k.readdir = (path, max) => readdir(path, max).map((e) => ({ ...e, type: 0 }));
  t.deepEqual(
    readVpickDir(k, "/esp", "/root.v", "x86-64", ".raw").map((c) => [c.path, c.skipped]),
    [["/root.v/root_1.raw", ""]],
  );
});

test("listDdis(): the paths in the command line's order, each directory newest first, with the lines the boot and the check say", (t) => {
  const k = new FakeKernel();
  for (const f of ["root_1.raw", "root_2.raw", "notes.txt"]) k.addFile("/esp/EFI/os/root.v/" + f, "x");
  k.addFile("/esp/EFI/os/empty.v/readme", "x");
  const notes: string[] = [];
  const note = { info: (l: string) => notes.push("info " + l), warn: (l: string) => notes.push("warn " + l) };
  const passedOver: Array<{ label: string; reason: string }> = [];
  const paths = ["/EFI/a.raw", "/EFI/os/root.v/", "/EFI/missing.v", "/EFI/os/empty.v"];
  t.deepEqual(listDdis(k, "/esp", paths, "x86-64", note, passedOver), [
    { path: "/EFI/a.raw", claimed: undefined },
    { path: "/EFI/os/root.v/root_2.raw", claimed: "2" },
    { path: "/EFI/os/root.v/root_1.raw", claimed: "1" },
  ]);
  t.deepEqual(passedOver, [{ label: "/EFI/missing.v", reason: 'open "/esp/EFI/missing.v": ENOENT' }]);
  t.deepEqual(notes, [
    "info passed over /EFI/os/root.v/notes.txt: not named root_VERSION.raw",
    "info /EFI/os/root.v/: 2 candidates, newest first: /EFI/os/root.v/root_2.raw, /EFI/os/root.v/root_1.raw",
    'warn passed over /EFI/missing.v: open "/esp/EFI/missing.v": ENOENT',
    "info passed over /EFI/os/empty.v/readme: not named empty_VERSION.raw",
    "info /EFI/os/empty.v: 0 candidates",
  ]);
});

test("listDdis(): named alone, a directory that cannot be read or holds no DDI throws; nothing at all to try throws too", (t) => {
  const k = new FakeKernel();
  k.addFile("/esp/empty.v/empty_1_arm64.raw", "x");
  const notes: string[] = [];
  const note = { info: (l: string) => notes.push(l), warn: (l: string) => notes.push(l) };
  const passedOver: Array<{ label: string; reason: string }> = [];
  t.throws(() => listDdis(k, "/esp", ["/missing.v"], "x86-64", note, passedOver), {
    any: true,
    message: 'open "/esp/missing.v": ENOENT',
  });
  t.deepEqual([passedOver, notes], [[], []], "its error, not a line");
  t.throws(() => listDdis(k, "/esp", ["/empty.v"], "x86-64", note, passedOver), {
    any: true,
    message: "/empty.v holds no DDI for x86-64",
  });
  t.deepEqual(notes, ["passed over /empty.v/empty_1_arm64.raw: for arm64, not x86-64", "/empty.v: 0 candidates"]);
  t.throws(() => listDdis(k, "/esp", ["/missing.v", "/empty.v"], "x86-64", note, passedOver), {
    any: true,
    message: "no DDI to try",
  });
  t.is(passedOver.length, 1);
});

test("imageVersionRefusal() and imageVersionWarning(): what the signed policy and a floor refuse, and what is only said", (t) => {
  // signed, the name's version (undefined: not a vpick name), IMAGE_VERSION=, the floor; refusal; warning
  const cases: Array<[boolean, string | undefined, string, string, string, string]> = [
    [true, "2", "2", "", "", ""],
    [true, "2", "", "", "its name says version 2, but the image carries no IMAGE_VERSION= in its os-release", ""],
    [
      true,
      "2",
      "1",
      "",
      "its name says version 2, the image says IMAGE_VERSION=1",
      "its name says version 2, the image says IMAGE_VERSION=1",
    ],
    [false, "2", "1", "", "", "its name says version 2, the image says IMAGE_VERSION=1"],
    [false, "2", "", "", "", ""],
    [true, undefined, "", "", "", ""],
    [true, undefined, "1", "", "", ""],
    [false, undefined, "", "3", "the image carries no IMAGE_VERSION=, and storage_init.min_version=3 asks for one", ""],
    [false, undefined, "2.9", "3", "its version 2.9 is older than storage_init.min_version=3", ""],
    [false, undefined, "3", "3", "", ""],
    [false, undefined, "3.1", "3", "", ""],
    [false, undefined, "1.9", "1.10", "its version 1.9 is older than storage_init.min_version=1.10", ""],
    [false, undefined, "1.10~rc1", "1.10", "its version 1.10~rc1 is older than storage_init.min_version=1.10", ""],
    [true, "3.1", "3.1", "3", "", ""],
  ];
  for (const [signed, claimed, image, floor, refusal, warning] of cases) {
    const what = JSON.stringify([signed, claimed, image, floor]);
    t.is(imageVersionRefusal(signed, claimed, image, floor), refusal, what);
    t.is(imageVersionWarning(claimed, image), warning, what);
  }
});
