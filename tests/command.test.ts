// The `storage-init` command (cli/command.ts) as a user runs it: its subcommands, their help,
// the options they refuse, and what `build` and `uki` write.
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { helpText, SUBCOMMANDS, unknownOption } from "../cli/command.js";
import { BUILD_FACTS_PATH, factsPathOf, initramfsPath } from "../toolchain/init_image.mjs";
import { readCpio } from "../toolchain/initramfs.mjs";
import { DIST, ROOT } from "../toolchain/tools.mjs";
import { peSections, readSection } from "../toolchain/uki.mjs";
import { fetchKernel } from "../qemu/kernel.mjs";
import { inTempDir, testIfBuilt } from "./helpers.js";

function storageInit(args: string[]): { code: number; out: string; err: string } {
  try {
    const out = execFileSync(process.execPath, [join(ROOT, "bin", "storage-init.mjs"), ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { code: 0, out, err: "" };
  } catch (e) {
    const f = e as { status: number; stdout: string; stderr: string };
    return { code: f.status, out: f.stdout, err: f.stderr };
  }
}

const built = testIfBuilt(initramfsPath(DIST, "x86-64", ["all"]), "node build.mjs tests");

test("helpText() lists every option of a subcommand with its value and what it does", (t) => {
  for (const name of Object.keys(SUBCOMMANDS)) {
    const text = helpText(name);
    t.true(text.startsWith(`usage: storage-init ${name} [options]`), text);
    for (const [k, o] of Object.entries(SUBCOMMANDS[name].options))
      t.regex(text, new RegExp(`--${k}${o.arg ? " " + o.arg.replace(/[.]/g, "\\.") : ""} +\\S`), `${name} --${k}`);
    t.regex(text, /-h, --help +this text/);
  }
});

test("unknownOption() names the option meant, or the options taken when none is near", (t) => {
  t.is(unknownOption("build", "--kernl"), "unknown option --kernl: did you mean --kernel?");
  t.is(
    unknownOption("build", "--kernel-versoin=6.1"),
    "unknown option --kernel-versoin: did you mean --kernel-version?",
  );
  t.is(unknownOption("uki", "--roothas"), "unknown option --roothas: did you mean --roothash?");
  t.regex(
    unknownOption("check", "--zzzzzz"),
    /^unknown option --zzzzzz: it takes --cmdline, --uki, --arch, --page-size, --certificate$/,
  );
});

test("storage-init: --help and each subcommand's, exit 0; no command, an unknown one or a mistyped option, exit 2 with what was meant", (t) => {
  const top = storageInit(["--help"]);
  t.is(top.code, 0);
  for (const name of Object.keys(SUBCOMMANDS)) t.regex(top.out, new RegExp(`^  ${name} +\\S`, "m"));
  t.is(storageInit([]).code, 2);
  const unknown = storageInit(["bulid"]);
  t.is(unknown.code, 2);
  t.regex(unknown.err, /storage-init: unknown command bulid: it takes build, uki, check/);
  const h = storageInit(["build", "--help"]);
  t.is(h.code, 0);
  t.is(h.out.trim(), helpText("build"));
  const typo = storageInit(["build", "--kernel-verison", "6.1.0-1-amd64", "-o", "x"]);
  t.is(typo.code, 2);
  t.regex(
    typo.err,
    /^storage-init build: unknown option --kernel-verison: did you mean --kernel-version\?\nusage: storage-init build/,
  );
  const missing = storageInit(["build", "--kernel"]);
  t.is(missing.code, 2);
  t.regex(missing.err, /storage-init build: Option '--kernel <value>' argument missing/);
});

built(
  "storage-init build packs the compiled init with its build facts and a kernel's storage modules; uki pins a root hash the init takes",
  (t) => {
    const k = fetchKernel("x86-64");
    inTempDir((dir) => {
      const out = join(dir, "initrd.img");
      const r = storageInit(["build", "--kernel", k.root, "--storage", "nvme", "-o", out]);
      t.is(r.code, 0, r.err);
      const files = readCpio(gunzipSync(readFileSync(out)));
      const data = (p: string) => Buffer.from(files.find((e) => e.path === p)?.data ?? "");
      t.deepEqual(data("init"), readFileSync(join(DIST, "storage-init")));
      t.deepEqual(
        JSON.parse(data(BUILD_FACTS_PATH).toString()),
        JSON.parse(readFileSync(factsPathOf(join(DIST, "storage-init")), "utf8")),
      );
      t.regex(data("modules/table").toString(), /\bnvme\b/);
      t.notRegex(data("modules/table").toString(), /virtio_blk/);
      // Two ways to name the kernel, or none: a usage error naming the ways.
      const twice = storageInit(["build", "--kernel", k.root, "--no-modules", "-o", out]);
      t.is(twice.code, 2);
      t.regex(twice.err, /name the kernel once: .*\(given: --kernel, --no-modules\)/);
      // An init for the other architecture than --arch says.
      const wrong = storageInit([
        "build",
        "--no-modules",
        "--arch",
        "arm64",
        "--init",
        join(DIST, "storage-init"),
        "-o",
        out,
      ]);
      t.is(wrong.code, 1);
      t.regex(wrong.err, /storage-init build: \S+\/dist\/storage-init was built for x86-64, not arm64/);
      // An init without the facts its build writes beside it.
      writeFileSync(join(dir, "init"), readFileSync(join(DIST, "storage-init")));
      const bare = storageInit(["build", "--no-modules", "--init", join(dir, "init"), "-o", out]);
      t.is(bare.code, 1);
      t.regex(bare.err, /init\.json is missing: the build facts 'node build\.mjs' writes beside the init/);

      const uki = join(dir, "uki.efi");
      const linux = k.vmlinuz;
      const refused = storageInit(["uki", "--linux", linux, "--initrd", out, "-o", uki]);
      t.is(refused.code, 1);
      t.regex(refused.err, /the init would refuse this command line: no roothash= on the kernel command line/);
      const badHash = storageInit(["uki", "--linux", linux, "--initrd", out, "-o", uki, "--roothash", "xyz"]);
      t.is(badHash.code, 2);
      t.regex(badHash.err, /--roothash /);
      const hash = "ab".repeat(32);
      const ok = storageInit([
        "uki",
        "--linux",
        linux,
        "--initrd",
        out,
        "-o",
        uki,
        "--roothash",
        hash,
        "--cmdline",
        "console=ttyS0",
      ]);
      t.is(ok.code, 0, ok.err);
      t.is(readSection(uki, ".cmdline").toString().trim(), `roothash=${hash} console=ttyS0`);
      t.is(readSection(uki, ".uname").toString().trim(), k.version);
      t.deepEqual(readSection(uki, ".initrd"), readFileSync(out));
      t.true(peSections(uki).some((s: { name: string }) => s.name === ".linux"));
      // A signed policy on the signed command line vouches for the root without roothash=.
      const policy = `storage_init.root_policy=signed storage_init.certificate_fingerprint=${"cd".repeat(32)}`;
      const signed = storageInit(["uki", "--linux", linux, "--initrd", out, "-o", uki, "--cmdline", policy]);
      t.is(signed.code, 0, signed.err);
    });
  },
);
