// `storage-init check` on the test disks qemu/images.ts makes with the real tools: its verdict
// must be what the boot does with them: the cases of tests/cases.ts run here and in tests/boot.test.ts.
import test from "ava";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { arm64PageSize, check } from "../cli/check.js";
import { buildDisk, buildRepartDdi, certificateFingerprint, testKey } from "../qemu/images.js";
import { ROOT } from "../toolchain/tools.mjs";
import { buildUki, stubFor } from "../toolchain/uki.mjs";
import { cpioArchive } from "../toolchain/initramfs.mjs";
import { gzipSync } from "node:zlib";
import { CASES, HASH } from "./cases.js";
import { fetchKernel } from "../qemu/kernel.mjs";
import { inTempDir, testIfBuilt } from "./helpers.js";

const disk = buildDisk;

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
  const d = await disk({});
  inTempDir((dir) => {
    mkdirSync(join(dir, "EFI", "storage-init"), { recursive: true });
    copyFileSync(d.ddi, join(dir, "EFI", "storage-init", "root.raw"));
    const v = check(dir, `roothash=${d.rootHash}`);
    t.true(v.ok, v.lines.join("\n"));
    t.false(check(dir, `roothash=${d.rootHash} storage_init.ddi=/EFI/other.raw`).ok);
  });
});

for (const c of CASES)
  test(`check() gives the boot's verdict: ${c.name}`, async (t) => {
    const d = await disk(c.disk);
    const v = check(d.disk, c.cmdline.split(HASH).join(d.rootHash));
    const text = v.lines.join("\n");
    if (c.reason === undefined) {
      t.true(v.ok, text);
      return;
    }
    t.false(v.ok, text);
    const why = c.checkReason ?? c.reason(d.rootHash);
    if (c.doing === "read the kernel command line") {
      // Refused as the boot refuses it, before any ESP is looked at: that one line.
      t.is(v.lines.length, 1, text);
      t.regex(v.lines[0], new RegExp(`^${why.source}$`));
      return;
    }
    t.regex(text, new RegExp(`\n  refused: ${why.source}`));
    t.is(v.lines[v.lines.length - 1], "verdict: no ESP holds a DDI this boot can use: the boot would fail");
  });

test("check() says that a DDI is a second stage, and checks what the boot checks of one", async (t) => {
  const d = await disk({ secondStage: true });
  const v = check(d.disk, `roothash=${d.rootHash}`);
  t.true(v.ok, v.lines.join("\n"));
  t.true(
    v.lines.includes("  second stage: a systemd initrd (/etc/initrd-release); the boot runs it under a tmpfs overlay"),
    v.lines.join("\n"),
  );
  const plain = await disk({});
  t.false(check(plain.disk, `roothash=${plain.rootHash}`).lines.some((l) => l.includes("second stage")));
});

test("arm64PageSize() reads an arm64 kernel Image's header: 4, 16 or 64 KiB, or undefined where it does not say", (t) => {
  const image = (flags: number) => {
    const b = new Uint8Array(64);
    b.set([0x41, 0x52, 0x4d, 0x64], 56);
    b[24] = flags;
    return b;
  };
  t.is(arm64PageSize(image(0b0010)), 4096);
  t.is(arm64PageSize(image(0b0100)), 16384);
  t.is(arm64PageSize(image(0b0111)), 65536, "the other flags are not the page size");
  t.is(arm64PageSize(image(0)), undefined, "unspecified");
  t.is(arm64PageSize(image(2).subarray(0, 63)), undefined, "too short");
  const notArm = image(2);
  notArm[59] = 0;
  t.is(arm64PageSize(notArm), undefined, "no magic");
});

const itArm = testIfBuilt(join(ROOT, "dist", "initramfs-arm64-all.cpio.gz"), "node build.mjs tests");

itArm("check() on arm64: Debian's kernel says 4 KiB pages; unknown, the page size is said to be assumed", async (t) => {
  t.is(arm64PageSize(readFileSync(fetchKernel("arm64").vmlinuz)), 4096);
  const d = await disk({}, { arch: "arm64" });
  const assumed = check(d.disk, `roothash=${d.rootHash}`, { arch: "arm64" });
  t.true(assumed.ok, assumed.lines.join("\n"));
  t.regex(assumed.lines.join("\n"), /\npage size: 4096 assumed, as Debian's arm64 kernels have/);
  const known = check(d.disk, `roothash=${d.rootHash}`, { arch: "arm64", pageSize: 65536 });
  t.true(known.ok, known.lines.join("\n"));
  t.false(known.lines.some((l) => l.startsWith("page size")));
  // The verity blocks are 4 KiB: a kernel with smaller pages could not take them.
  const small = check(d.disk, `roothash=${d.rootHash}`, { arch: "arm64", pageSize: 2048 });
  t.false(small.ok);
  t.regex(small.lines.join("\n"), /refused: verity data block size 4096 exceeds the page size 2048/);
  t.false(
    check(d.disk, `roothash=${d.rootHash}`).lines.some((l) => l.startsWith("page size")),
    "x86-64: always 4 KiB",
  );
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
  const good1 = await buildRepartDdi({ version: "1", signWith: "mok" });
  const good2 = await buildRepartDdi({ version: "2", signWith: "mok" });
  const bad2 = await buildRepartDdi({ version: "2", signWith: "mok", corruptSignature: true });
  const other3 = await buildRepartDdi({ version: "3", signWith: "other" });
  const unsigned1 = await buildRepartDdi({ version: "1" });
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
  const other = await buildRepartDdi({ version: "3", signWith: "other" });
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
