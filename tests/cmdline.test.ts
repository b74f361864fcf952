import test from "ava";
import {
  DEFAULT_FAILURE_DELAY_MS,
  DEFAULT_TIMEOUT_MS,
  parseBoolean,
  parseCmdline,
  parseSeconds,
  verificationRefusal,
} from "../runtime/cmdline.js";
import { DEFAULT_DDI_PATH } from "../lib/facts.js";
import { importBuiltWith, rng } from "./helpers.js";

const HASH = "0123456789abcdef".repeat(4);

test("parseCmdline() reads systemd's keys and ours", (t) => {
  const c = parseCmdline(
    `quiet roothash=${HASH.toUpperCase()} init=/usr/lib/systemd/systemd rootflags=noacl systemd.verity_root_options=panic-on-corruption,ignore-zero-blocks storage_init.ddi=/EFI/x/y.raw storage_init.esp=PARTLABEL=ESP storage_init.timeout=2.5 storage-init.on-failure=poweroff storage_init.failure_delay=250ms storage_init.debug`,
  );
  t.is(c.rootHash, HASH);
  t.is(c.init, "/usr/lib/systemd/systemd");
  t.is(c.rootFlags, "noacl");
  t.deepEqual(c.verityOptions, ["panic_on_corruption", "ignore_zero_blocks"]);
  t.deepEqual(c.ddiPaths, ["/EFI/x/y.raw"]);
  t.is(c.esp, "PARTLABEL=ESP");
  t.is(c.timeoutMs, 2500);
  t.is(c.onFailure, "poweroff");
  t.is(c.failureDelayMs, 250);
  t.true(c.debug);
  t.deepEqual(c.problems, []);
});

test("parseCmdline(): a repeated key takes the last value; unknown keys are ignored", (t) => {
  const c = parseCmdline(`storage_init.timeout=1 foo=bar storage_init.timeout=7 roothash=${HASH}`);
  t.is(c.timeoutMs, 7000);
  t.deepEqual(c.problems, []);
});

test("parseCmdline() names every invalid value", (t) => {
  const c = parseCmdline(
    "roothash=xyz storage_init.on_failure=explode storage_init.timeout=-1 init=sbin/init rootfstype=ext4 storage_init.ddi=/a/../b systemd.verity=maybe storage_init.esp",
  );
  t.deepEqual(c.problems, [
    'roothash= is not hexadecimal: "xyz"',
    'storage_init.on_failure= must be one of reboot|poweroff|halt|shell: "explode"',
    'storage_init.timeout= is not a duration: "-1"',
    'init= must be an absolute path: "sbin/init"',
    "rootfstype=ext4 is not supported; supported: erofs",
    "storage_init.ddi= takes absolute paths on the ESP without '..': \"/a/../b\"",
    'systemd.verity= is not a boolean: "maybe"',
    "storage_init.esp= needs a value",
  ]);
  t.is(c.rootHash, undefined);
  t.is(c.onFailure, "reboot", "an invalid action keeps the safe default");
});

test("parseCmdline() takes storage_init.root_policy=signed, and with it has dm_verity require signatures", (t) => {
  const pin = `storage_init.certificate_fingerprint=${"ab".repeat(32)}`;
  const c = parseCmdline(`storage_init.root_policy=signed ${pin} dm_verity.foo=1`);
  t.is(c.rootPolicy, "signed");
  t.deepEqual(c.problems, []);
  t.deepEqual(c.moduleParams, [{ module: "dm_verity", params: "foo=1 require_signatures=1" }]);
  const d = parseCmdline(`roothash=${HASH}`);
  t.is(d.rootPolicy, "verity", "pinned by roothash= unless a build or the command line says signed");
  t.deepEqual(d.moduleParams, []);
  t.deepEqual(parseCmdline(`storage_init.root_policy=signed ${pin} systemd.verity=0`).problems, [
    "systemd.verity=0 contradicts storage_init.root_policy=signed",
  ]);
  t.deepEqual(parseCmdline("storage_init.root_policy=maybe").problems, [
    'storage_init.root_policy= must be verity|signed: "maybe"',
  ]);
});

test("parseCmdline() takes several DDI paths for storage_init.ddi=, in order, each once", (t) => {
  const c = parseCmdline("storage_init.ddi=/EFI/os/root.v/,/EFI/os/b.raw,/EFI/os/root.v/,");
  t.deepEqual(c.ddiPaths, ["/EFI/os/root.v/", "/EFI/os/b.raw"]);
  t.deepEqual(c.problems, []);
  const many = Array.from({ length: 9 }, (_, i) => `/d${i}.raw`).join(",");
  t.deepEqual(parseCmdline("storage_init.ddi=" + many).problems, ["storage_init.ddi= names more than 8 paths"]);
});

test("parseCmdline() names roothash= before what is wrong with the hash, and keeps none", (t) => {
  for (const [hash, problem] of [
    ["abc", "roothash= has an odd number of digits (3)"],
    ["ab".repeat(8), "roothash= has 16 digits; expected 32 to 128"],
    ["ab".repeat(65), "roothash= has 130 digits; expected 32 to 128"],
  ]) {
    const c = parseCmdline(`roothash=${HASH} roothash=${hash}`);
    t.deepEqual(c.problems, [problem]);
    t.is(c.rootHash, undefined);
  }
});

test("parseCmdline() takes systemd.verity=0 as the explicit opt-out", (t) => {
  t.true(parseCmdline("systemd.verity=0").verityDisabled);
  t.true(parseCmdline("systemd.verity=no").verityDisabled);
  t.false(parseCmdline("systemd.verity=1").verityDisabled);
  t.false(parseCmdline("").verityDisabled);
});

test("parseSeconds() accepts seconds and milliseconds only", (t) => {
  t.is(parseSeconds("3"), 3000);
  t.is(parseSeconds("0.5s"), 500);
  t.is(parseSeconds("20ms"), 20);
  t.is(parseSeconds("1.0015s"), 1002);
  t.is(parseSeconds("86400000s"), 86400000000);
  for (const bad of ["", "s", "ms", ".s", "-1", "1e3", "1..2", "abc", "9999999999999", "86400001s", "86400001ms"])
    t.is(parseSeconds(bad), undefined, bad);
});

test("parseCmdline() survives 10,000 random command lines without throwing", (t) => {
  const next = rng(7);
  const alphabet = 'ab=" \t_-.\\/roothashinitstorage_0123456789\u00e9\u20ac\u0000\n';
  for (let i = 0; i < 10000; i++) {
    let s = "";
    const len = next() % 80;
    for (let j = 0; j < len; j++) s += alphabet[next() % alphabet.length];
    const c = parseCmdline(s);
    if (c.rootHash !== undefined) t.regex(c.rootHash, /^[0-9a-f]{32,128}$/);
    // What boot() relies on once there are no problems: nothing the policy forbids got through.
    if (c.problems.length === 0) {
      for (const p of c.ddiPaths) if (p[0] !== "/" || p.includes("/../")) t.fail(`${JSON.stringify(s)}: ${p}`);
      if (c.rootPolicy === "signed" && c.verityDisabled) t.fail(JSON.stringify(s));
    }
  }
  t.pass();
});

test("parseCmdline() takes dm-verity's flags from systemd.verity_root_options= by their whole names, and refuses format options by name", (t) => {
  const c = parseCmdline(
    "systemd.verity_root_options=ignore-corruption,panic-on-corruption,ignore_zero_blocks,,check-at-most-once",
  );
  t.deepEqual(c.verityOptions, [
    "ignore_corruption",
    "panic_on_corruption",
    "ignore_zero_blocks",
    "check_at_most_once",
  ]);
  t.deepEqual(c.problems, []);
  const bad = parseCmdline(
    "systemd.verity_root_options=hash=sha512,superblock=false,restart-on-corruption,frobnicate,corruption,restart_on,=panic_on_corruption",
  );
  t.deepEqual(bad.verityOptions, ["restart_on_corruption"]);
  t.deepEqual(
    bad.problems.map((p) => p.slice(0, p.indexOf(" is not taken"))),
    [
      'systemd.verity_root_options="hash=sha512"',
      'systemd.verity_root_options="superblock=false"',
      'systemd.verity_root_options="frobnicate"',
      'systemd.verity_root_options="corruption"',
      'systemd.verity_root_options="restart_on"',
      'systemd.verity_root_options="=panic_on_corruption"',
    ],
  );
  t.regex(
    bad.problems[0],
    /the verity format comes from the DDI's superblock, and the options are ignore_corruption, restart_on_corruption, panic_on_corruption, ignore_zero_blocks, check_at_most_once$/,
  );
});

test("parseCmdline() takes storage_init.allow_weak_hash as a boolean", (t) => {
  t.false(parseCmdline("").allowWeakHash);
  t.true(parseCmdline("storage_init.allow_weak_hash").allowWeakHash);
  t.true(parseCmdline("storage-init.allow-weak-hash=yes").allowWeakHash);
  t.deepEqual(parseCmdline("storage_init.allow_weak_hash=maybe").problems, [
    'storage_init.allow_weak_hash= is not a boolean: "maybe"',
  ]);
});

test("parseCmdline() in a build with --root-policy signed: signed by default, and the command line cannot lower it", async (t) => {
  const m = await importBuiltWith<typeof import("../runtime/cmdline.js")>("runtime/cmdline.ts", "signed", "2.0", [
    "ab".repeat(32),
    "cd".repeat(32),
  ]);
  t.is(m.parseCmdline("").rootPolicy, "signed");
  t.deepEqual(m.parseCmdline("storage_init.root_policy=verity").problems, [
    "storage_init.root_policy=verity is refused: this build requires signed roots",
  ]);
  t.deepEqual(m.parseCmdline("").moduleParams, [{ module: "dm_verity", params: "require_signatures=1" }]);
  t.deepEqual(m.parseCmdline("").certificateFingerprints, ["ab".repeat(32), "cd".repeat(32)], "--certificate");
  t.deepEqual(m.parseCmdline(`storage_init.certificate_fingerprint=${"ef".repeat(32)}`).problems, [
    "storage_init.certificate_fingerprint= is refused: this build names the certificates it takes",
  ]);
  t.is(m.parseCmdline("").minVersion, "2.0", "--min-version is the floor");
  t.is(m.parseCmdline("storage_init.min_version=2.1").minVersion, "2.1", "the command line may raise it");
  t.deepEqual(m.parseCmdline("storage_init.min_version=1.9").problems, [
    "storage_init.min_version=1.9 is refused: this build boots nothing older than 2.0",
  ]);
});

test("parseCmdline() takes storage_init.min_version= as a version, and names one that is not", (t) => {
  t.is(parseCmdline("").minVersion, "", "no floor by default");
  t.is(parseCmdline("storage_init.min_version=2.1~rc1").minVersion, "2.1~rc1");
  t.deepEqual(parseCmdline("storage_init.min_version=").problems, [
    'storage_init.min_version="": is empty or longer than 128',
  ]);
  t.deepEqual(parseCmdline("storage_init.min_version=1/2").problems, [
    'storage_init.min_version="1/2": "1/2" has a character outside a-z A-Z 0-9 . - ~ ^',
  ]);
});

test("parseCmdline() takes storage_init.certificate_fingerprint= as SHA-256 fingerprints, and the signed policy requires one", (t) => {
  const colons = "AB:".repeat(31) + "AB";
  const c = parseCmdline(
    `storage_init.root_policy=signed storage_init.certificate_fingerprint=${colons},${"cd".repeat(32)},${"ab".repeat(32)}`,
  );
  t.deepEqual(c.problems, []);
  t.deepEqual(c.certificateFingerprints, ["ab".repeat(32), "cd".repeat(32)], "colons dropped, lower case, once each");
  t.deepEqual(parseCmdline("storage_init.root_policy=signed").problems, [
    "storage_init.root_policy=signed needs storage_init.certificate_fingerprint= (the SHA-256 of the certificate that signs the roots) or a build with --certificate",
  ]);
  t.deepEqual(parseCmdline(`storage_init.certificate_fingerprint=${"ab".repeat(31)}`).problems, [
    `storage_init.certificate_fingerprint=${JSON.stringify("ab".repeat(31))} is not a SHA-256 fingerprint (64 hex digits)`,
  ]);
  const five = [1, 2, 3, 4, 5].map((i) => String(i).repeat(64)).join(",");
  t.deepEqual(parseCmdline(`storage_init.certificate_fingerprint=${five}`).problems, [
    "storage_init.certificate_fingerprint= names more than 4 certificates",
  ]);
});

test("parseCmdline() of an empty command line is the defaults, with no problem", (t) => {
  t.deepEqual(parseCmdline(""), {
    rootHash: undefined,
    verityDisabled: false,
    verityOptions: [],
    rootPolicy: "verity",
    minVersion: "",
    certificateFingerprints: [],
    allowWeakHash: false,
    rootFsType: "erofs",
    rootFlags: "",
    init: undefined,
    ddiPaths: [DEFAULT_DDI_PATH],
    esp: undefined,
    sources: ["initrd", "esp"],
    timeoutMs: DEFAULT_TIMEOUT_MS,
    onFailure: "reboot",
    failureDelayMs: DEFAULT_FAILURE_DELAY_MS,
    debug: false,
    secondStage: "auto",
    moduleParams: [],
    problems: [],
  });
});

test("parseCmdline() ignores root=: the root is the DDI's", (t) => {
  t.deepEqual(parseCmdline("root=/dev/sda2"), parseCmdline(""));
  t.deepEqual(parseCmdline("root=PARTUUID=" + "ab".repeat(16)).problems, []);
});

test("parseCmdline() names each key given without a value or with an empty one, one line each", (t) => {
  const cases: Array<[string, string]> = [
    ["roothash", "roothash= is empty"],
    ["systemd.verity_root_options", "systemd.verity_root_options= needs a value"],
    ["storage_init.root_policy", 'storage_init.root_policy= must be verity|signed: ""'],
    ["storage_init.min_version", 'storage_init.min_version="": is empty or longer than 128'],
    [
      "storage_init.certificate_fingerprint",
      'storage_init.certificate_fingerprint="" is not a SHA-256 fingerprint (64 hex digits)',
    ],
    ["root", "root= needs a value"],
    ["root=", "root= needs a value"],
    ["rootfstype", "rootfstype= needs a value"],
    ["init", "init= needs a value"],
    ["storage_init.ddi", "storage_init.ddi= needs a value"],
    ["storage_init.timeout", 'storage_init.timeout= is not a duration: ""'],
    ["storage_init.on_failure", 'storage_init.on_failure= must be one of reboot|poweroff|halt|shell: ""'],
    ["storage_init.failure_delay", 'storage_init.failure_delay= is not a duration: ""'],
    ["storage_init.failure_delay=soon", 'storage_init.failure_delay= is not a duration: "soon"'],
    ["storage_init.ddi=a.raw", "storage_init.ddi= takes absolute paths on the ESP without '..': \"a.raw\""],
    ["storage_init.ddi=/../a.raw", "storage_init.ddi= takes absolute paths on the ESP without '..': \"/../a.raw\""],
    ["storage_init.ddi=/EFI/..", "storage_init.ddi= takes absolute paths on the ESP without '..': \"/EFI/..\""],
  ];
  for (const [cmdline, problem] of cases) t.deepEqual(parseCmdline(cmdline).problems, [problem], cmdline);
  const bare = parseCmdline("rootflags systemd.verity storage_init.allow_weak_hash storage_init.debug");
  t.deepEqual([bare.rootFlags, bare.verityDisabled, bare.allowWeakHash, bare.debug], ["", false, true, true]);
  t.deepEqual(bare.problems, []);
});

test("parseCmdline() takes each value at its bounds", (t) => {
  t.is(parseCmdline("roothash=" + "AB".repeat(16)).rootHash, "ab".repeat(16), "32 digits");
  t.is(parseCmdline("roothash=" + "ab".repeat(64)).rootHash, "ab".repeat(64), "128 digits");
  const four = [1, 2, 3, 4].map((i) => String(i).repeat(64));
  const named = parseCmdline(`storage_init.certificate_fingerprint=${four.join(",")}`);
  t.deepEqual([named.certificateFingerprints, named.problems], [four, []], "four certificates");
  const eight = Array.from({ length: 8 }, (_, i) => `/d${i}.raw`);
  t.deepEqual(parseCmdline(`storage_init.ddi=${eight.join(",")}`).ddiPaths, eight);
  t.deepEqual(parseCmdline("storage_init.ddi=,").ddiPaths, [DEFAULT_DDI_PATH], "no path keeps the default");
  t.is(parseSeconds("0000000000.5"), 500, "12 characters");
  t.is(parseSeconds("00000000000.5"), undefined, "13 characters");
  const c = parseCmdline(
    "rootfstype=erofs storage_init.root_policy=verity storage_init.min_version=~rc1 storage_init.debug=0",
  );
  t.deepEqual(c.problems, []);
  t.is(c.rootFsType, "erofs");
  t.is(c.rootPolicy, "verity", "a build of the verity policy takes it from the command line");
  t.is(c.minVersion, "~rc1", "with no floor built in, any version is one");
  t.false(c.debug);
  t.false(parseCmdline("storage_init.debug=maybe").debug);
});

test("parseCmdline() gives each module its own parameters, a bare one as a flag, a value with white space quoted", (t) => {
  const c = parseCmdline(
    'nvme.a=1 virtio_blk.flag nvme.b="x y" nvme.c="x\ty" nvme.d=" x" nvme.e="\tx" .lead=1 storage_init.unknown=1 quiet foo=bar',
  );
  t.deepEqual(c.moduleParams, [
    { module: "nvme", params: 'a=1 b="x y" c="x\ty" d=" x" e="\tx"' },
    { module: "virtio_blk", params: "flag" },
  ]);
  t.deepEqual(c.problems, []);
});

test("parseBoolean() reads the words systemd's parse_boolean reads, in any case", (t) => {
  for (const w of ["1", "yes", "y", "true", "t", "on", "YES", "On"]) t.true(parseBoolean(w), w);
  for (const w of ["0", "no", "n", "false", "f", "off", "NO", "Off"]) t.false(parseBoolean(w), w);
  for (const w of ["", "2", "yess", "of", "nah"]) t.is(parseBoolean(w), undefined, w);
  t.true(parseBoolean(undefined), "a bare key is true");
});

test("parseCmdline() in a build with --min-version takes the floor itself from the command line", async (t) => {
  const m = await importBuiltWith<typeof import("../runtime/cmdline.js")>("runtime/cmdline.ts", "signed", "2.0", [
    "ab".repeat(32),
  ]);
  const c = m.parseCmdline("storage_init.min_version=2.0 storage_init.root_policy=signed");
  t.deepEqual(c.problems, []);
  t.is(c.minVersion, "2.0");
  t.is(c.rootPolicy, "signed");
});

test("verificationRefusal(): refused only when nothing verifies the root", (t) => {
  const refusal = verificationRefusal(parseCmdline(""));
  t.regex(refusal, /^no roothash= on the kernel command line: refusing to boot an unverified root \(/);
  t.is(verificationRefusal(parseCmdline("roothash=" + "ab".repeat(32))), "");
  t.is(verificationRefusal(parseCmdline("systemd.verity=0")), "");
  t.is(verificationRefusal(parseCmdline("storage_init.root_policy=signed")), "");
  t.is(verificationRefusal(parseCmdline("", { rootPolicy: "signed", minVersion: "", certificates: "" })), "");
});

test("storage_init.second_stage=: auto by default, yes or no as parseBoolean() reads them, anything else a problem", (t) => {
  t.is(parseCmdline("").secondStage, "auto");
  t.is(parseCmdline("storage_init.second_stage=AUTO").secondStage, "auto");
  t.is(parseCmdline("storage_init.second_stage").secondStage, "yes");
  t.is(parseCmdline("storage_init.second_stage=1").secondStage, "yes");
  t.is(parseCmdline("storage_init.second_stage=off").secondStage, "no");
  const bad = parseCmdline("storage_init.second_stage=maybe");
  t.is(bad.secondStage, "auto");
  t.deepEqual(bad.problems, ['storage_init.second_stage= must be auto, yes or no: "maybe"']);
});
