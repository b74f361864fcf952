// `storage-init check` on the test disks qemu/images.mjs makes with the real tools: its verdict
// must be what the boot does with them (tests/boot.test.ts boots the same variants).
import test from "ava";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { check } from "../cli/check.js";
import { buildDisk, buildRepartDdi, certificateFingerprint, testKey } from "../qemu/images.js";
import { ROOT } from "../toolchain/tools.mjs";
import { buildUki, stubFor } from "../toolchain/uki.mjs";
import { cpioArchive } from "../toolchain/initramfs.mjs";
import { gzipSync } from "node:zlib";
import { inTempDir } from "./helpers.js";

type Disk = { disk: string; rootHash: string; dir: string };
const disk = async (opts: object) => (await buildDisk(opts)) as Disk;

test("check() passes the good disk: the DDI on its ESP, matching roothash=, its root hash recomputed", async (t) => {
  const d = await disk({});
  const v = check(d.disk, `roothash=${d.rootHash}`);
  t.true(v.ok, v.lines.join("\n"));
  t.true(v.lines.includes("  root hash recomputed over the data: matches roothash="));
  t.regex(
    v.lines[v.lines.length - 1],
    /^verdict: the boot would take \/EFI\/storage-init\/root\.raw on ESP partition 1 /,
  );
});

test("check() takes an ESP's directory as well as a disk image", async (t) => {
  const d = (await disk({})) as Disk & { ddi: string };
  inTempDir((dir) => {
    mkdirSync(join(dir, "EFI", "storage-init"), { recursive: true });
    copyFileSync(d.ddi, join(dir, "EFI", "storage-init", "root.raw"));
    const v = check(dir, `roothash=${d.rootHash}`);
    t.true(v.ok, v.lines.join("\n"));
    t.false(check(dir, `roothash=${d.rootHash} storage_init.ddi=/EFI/other.raw`).ok);
  });
});

test("check() fails a disk the boot fails on, saying why", async (t) => {
  const cases: Array<[object, (h: string) => string, RegExp]> = [
    [
      { flipErofsByte: 1030 },
      (h) => `roothash=${h}`,
      /refused: the root hash recomputed over the data is not roothash=/,
    ],
    [{ omitDdi: true }, (h) => `roothash=${h}`, /refused: no DDI at \/EFI\/storage-init\/root\.raw/],
    [{}, () => `roothash=${"ab".repeat(32)}`, /refused: root partition UUID \S+ does not match roothash=/],
    [
      { lowerVerityDataBlocks: 1 },
      (h) => `roothash=${h}`,
      /refused: the erofs file system \(\d+ bytes\) is larger than verity covers/,
    ],
    [{}, () => "", /^no roothash=: the boot refuses an unverified root/],
  ];
  for (const [opts, cmdline, why] of cases) {
    const d = await disk(opts);
    const v = check(d.disk, cmdline(d.rootHash));
    t.false(v.ok, JSON.stringify(opts));
    t.regex(v.lines.join("\n"), why, JSON.stringify(opts) + "\n" + v.lines.join("\n"));
  }
});

/** `storage-init check` as a user runs it: its exit status and output. */
function run(args: string[]): { code: number; out: string } {
  const bin = join(ROOT, "bin", "storage-init.mjs");
  try {
    return { code: 0, out: execFileSync(process.execPath, [bin, ...args], { encoding: "utf8" }) };
  } catch (e) {
    const f = e as { status: number; stdout: string; stderr: string };
    return { code: f.status, out: f.stdout + f.stderr };
  }
}

test("storage-init check: exit 0 for a verified root, 1 for a refused one, and the command line from a UKI", async (t) => {
  const d = await disk({});
  t.is(run(["check", d.disk, "--cmdline", `roothash=${d.rootHash}`]).code, 0);
  t.is(run(["check", d.disk, "--cmdline", `roothash=${"ab".repeat(32)}`]).code, 1);
  t.is(run(["check", d.disk]).code, 2);
  // A UKI whose signed command line pins this disk's root hash.
  inTempDir((dir) => {
    const part = (name: string) => {
      writeFileSync(join(dir, name), Buffer.alloc(4096, 1));
      return join(dir, name);
    };
    const ukiWith = (initrd: string, name: string) =>
      buildUki({
        stub: stubFor("x86-64"),
        kernel: part("vmlinuz"),
        initrd,
        cmdline: `console=ttyS0 roothash=${d.rootHash}`,
        osRelease: "ID=test\n",
        uname: "6.1.0-test",
        out: join(dir, name),
      }).out;
    const r = run(["check", d.disk, "--uki", ukiWith(part("initrd"), "uki.efi")]);
    t.is(r.code, 0, r.out);
    // A UKI whose init was built with --min-version 9: its initramfs says so, and the check applies it.
    const facts = { arch: "x86-64", rootPolicy: "verity", minVersion: "9", certificates: "" };
    writeFileSync(
      join(dir, "initrd.cpio.gz"),
      gzipSync(cpioArchive([{ path: "etc/storage-init/build.json", type: "file", data: JSON.stringify(facts) }])),
    );
    const f = run(["check", d.disk, "--uki", ukiWith(join(dir, "initrd.cpio.gz"), "floored.efi")]);
    t.is(f.code, 1, f.out);
    t.regex(f.out, /floor: storage_init\.min_version=9/);
    t.regex(f.out, /refused: the image carries no IMAGE_VERSION=, and storage_init\.min_version=9 asks for one/);
  });
});

/** An ESP directory holding `files` ({ path on the ESP: DDI file }). */
function espDir(dir: string, files: Record<string, string>): string {
  for (const [path, src] of Object.entries(files)) {
    mkdirSync(join(dir, dirname(path)), { recursive: true });
    copyFileSync(src, join(dir, path));
  }
  return dir;
}

test("check() on DDIs systemd-repart signed: the signature checked with --certificate, each refusal named, the boot's choice", async (t) => {
  const mok = testKey("mok").cert;
  const good1 = (await buildRepartDdi({ version: "1", signWith: "mok" })) as { ddi: string; rootHash: string };
  const good2 = (await buildRepartDdi({ version: "2", signWith: "mok" })) as { ddi: string; rootHash: string };
  const bad2 = (await buildRepartDdi({ version: "2", signWith: "mok", corruptSignature: true })) as { ddi: string };
  const other3 = (await buildRepartDdi({ version: "3", signWith: "other" })) as { ddi: string };
  const unsigned1 = (await buildRepartDdi({ version: "1" })) as { ddi: string };
  const pin = (...names: string[]) =>
    "storage_init.certificate_fingerprint=" + names.map((n) => certificateFingerprint(testKey(n).cert)).join(",");
  // Both test keys pinned: the machine's keyrings (--certificate) decide between them.
  const signed = `storage_init.root_policy=signed ${pin("mok", "other")}`;
  const ab = "storage_init.ddi=/EFI/os/root.v/";
  inTempDir((dir) => {
    const one = espDir(join(dir, "one"), { "EFI/storage-init/root.raw": good1.ddi });
    let v = check(one, signed, { certificates: [mok] });
    t.true(v.ok, v.lines.join("\n"));
    t.true(v.lines.includes(`  signature verifies over root hash ${good1.rootHash} with a --certificate`));
    v = check(one, signed);
    t.false(v.ok);
    t.regex(
      v.lines.join("\n"),
      /refused: the boot has the kernel check this signature against its keyrings: give --certificate/,
    );
    t.false(check(one, signed, { certificates: [testKey("other").cert] }).ok, "a key the machine does not trust");
    t.is(run(["check", one, "--cmdline", signed, "--certificate", mok]).code, 0);
    t.is(run(["check", one, "--cmdline", signed]).code, 1);

    const refused = espDir(join(dir, "refused"), {
      "EFI/os/root.v/root_3.raw": other3.ddi,
      "EFI/os/root.v/root_2.raw": bad2.ddi,
      "EFI/os/root.v/root_1.raw": unsigned1.ddi,
    });
    v = check(refused, `${signed} ${ab}`, { certificates: [mok] });
    t.false(v.ok);
    const text = v.lines.join("\n");
    t.regex(
      text,
      /DDI \/EFI\/os\/root\.v\/root_3\.raw\n(.*\n)*  refused: the signature does not verify with any --certificate/,
    );
    t.regex(
      text,
      /DDI \/EFI\/os\/root\.v\/root_1\.raw\n  refused: the DDI has no root-verity-sig partition for x86-64/,
    );
    t.is(text.split("refused: the signature does not verify").length - 1, 2, text);
    t.regex(v.lines[v.lines.length - 1], /^verdict: no ESP holds a DDI this boot can use/);
    v = check(refused, `storage_init.root_policy=signed ${pin("mok")} ${ab}`, {
      certificates: [mok, testKey("other").cert],
    });
    t.regex(
      v.lines.join("\n"),
      /DDI \/EFI\/os\/root\.v\/root_3\.raw\n(.*\n)*  refused: the signature is not taken: it was made by certificate SHA-256 [0-9a-f]{64}, which storage_init.certificate_fingerprint= does not name\n/,
      "pinned to mok, a DDI another trusted key signed is refused",
    );

    const newest = espDir(join(dir, "newest"), {
      "EFI/os/root.v/root_3.raw": bad2.ddi,
      "EFI/os/root.v/root_2.raw": good2.ddi,
      "EFI/os/root.v/root_1.raw": good1.ddi,
    });
    v = check(newest, `${signed} ${ab}`, { certificates: [mok] });
    t.true(v.ok, v.lines.join("\n"));
    t.regex(v.lines[v.lines.length - 1], /^verdict: the boot would take \/EFI\/os\/root\.v\/root_2\.raw /);

    const pinned = espDir(join(dir, "pinned"), {
      "EFI/os/root.v/root_2.raw": good2.ddi,
      "EFI/os/root.v/root_1.raw": good1.ddi,
    });
    const renamed = espDir(join(dir, "renamed"), {
      "EFI/os/root.v/root_9.raw": good1.ddi,
      "EFI/os/root.v/root_2.raw": good2.ddi,
    });
    v = check(renamed, `${signed} ${ab}`, { certificates: [mok] });
    t.true(v.ok, v.lines.join("\n"));
    t.regex(
      v.lines.join("\n"),
      /DDI \/EFI\/os\/root\.v\/root_9\.raw\n(.*\n)*  refused: its name says version 9, the image says IMAGE_VERSION=1\n/,
    );
    t.true(v.lines.includes("  root: init /sbin/init; IMAGE_VERSION=2 (/etc/os-release)"), v.lines.join("\n"));
    t.regex(v.lines[v.lines.length - 1], /^verdict: the boot would take \/EFI\/os\/root\.v\/root_2\.raw /);
    v = check(renamed, `${signed} ${ab} storage_init.min_version=3`, { certificates: [mok] });
    t.false(v.ok);
    t.true(v.lines.includes("  refused: its version 2 is older than storage_init.min_version=3"), v.lines.join("\n"));
    t.is(
      run(["check", renamed, "--cmdline", `${signed} ${ab} storage_init.min_version=3`, "--certificate", mok]).code,
      1,
    );

    v = check(pinned, `roothash=${good1.rootHash} ${ab}`, { certificates: [mok] });
    t.true(v.ok, v.lines.join("\n"));
    t.regex(
      v.lines.join("\n"),
      /DDI \/EFI\/os\/root\.v\/root_2\.raw\n  refused: root partition UUID \S+ does not match roothash=/,
    );
    t.regex(v.lines[v.lines.length - 1], /^verdict: the boot would take \/EFI\/os\/root\.v\/root_1\.raw /);
  });
});

test("check() gives the boot's verdict on a pinned DDI signed by a key the machine does not trust: a warning under verity, a refusal where signatures are required", async (t) => {
  const other = (await buildRepartDdi({ version: "3", signWith: "other" })) as { ddi: string; rootHash: string };
  inTempDir((dir) => {
    const esp = espDir(join(dir, "esp"), { "EFI/storage-init/root.raw": other.ddi });
    const pinned = `roothash=${other.rootHash}`;
    let v = check(esp, pinned);
    t.true(v.ok, v.lines.join("\n"));
    t.true(
      v.lines.some((l) =>
        /^  warning: the signature was not checked: the boot has the kernel check this signature .*; roothash= pins the root, so the boot activates it without the signature where the kernel refuses it$/.test(
          l,
        ),
      ),
      v.lines.join("\n"),
    );
    v = check(esp, pinned, { certificates: [testKey("mok").cert] });
    t.true(v.ok, v.lines.join("\n"));
    t.true(
      v.lines.some((l) =>
        l.startsWith("  warning: the signature did not verify: the signature does not verify with any --certificate"),
      ),
      v.lines.join("\n"),
    );
    const required = `${pinned} storage_init.root_policy=signed storage_init.certificate_fingerprint=${certificateFingerprint(testKey("other").cert)}`;
    v = check(esp, required, { certificates: [testKey("mok").cert] });
    t.false(v.ok, v.lines.join("\n"));
    t.true(
      v.lines.some((l) => l.startsWith("  refused: the signature does not verify with any --certificate")),
      v.lines.join("\n"),
    );
    t.is(run(["check", esp, "--cmdline", pinned]).code, 0);
    t.is(run(["check", esp, "--cmdline", required, "--certificate", testKey("mok").cert]).code, 1);
    t.is(run(["check", esp, "--cmdline", required, "--certificate", testKey("other").cert]).code, 0);
  });
});
