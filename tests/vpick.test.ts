import test from "ava";
import { compareEntries, compareVersions, isVpickDir, parseVpickName, readVpickDir } from "../runtime/vpick.js";
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
    ["~", ""],
    ["1_", "1.2"],
    ["1.3.3", "1_2_3"],
    ["1+", "1.2"],
    ["1.3.3", "1+2+3"],
    ["1.9", "1.10"],
    ["1.0~rc1", "1.0"],
    ["1.0", "1.0^patch1"],
    ["1.0-1", "1.0.1"],
    ["99999999999999999999", "100000000000000000000"],
  ];
  for (const [a, b] of older) {
    t.true(compareVersions(a, b) < 0, `${a} < ${b}`);
    t.true(compareVersions(b, a) > 0, `${b} > ${a}`);
  }
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
});
