// The UKI builder against Debian's systemd-stub and objcopy: where the sections go, what they
// hold, and the DDI paths it refuses. The UKI's boots are in tests/boot.test.ts ("uefi:").
import test from "ava";
import { createHash, createPublicKey, verify } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stubLoadsFrom } from "../../lib/facts.js";
import { ROOT } from "../../toolchain/tools.mjs";
import {
  buildUki,
  measuredSections,
  peLayout,
  peSections,
  placeSections,
  readSection,
  stubFor,
} from "../../toolchain/uki.mjs";
import { pcrKey } from "../../qemu/encrypted_root.js";
import { inTempDir } from "../helpers.js";

const STUB = stubFor("x86-64");
if (!existsSync(STUB) && process.env.CI) throw new Error(`${STUB} is missing: .ci/install installs systemd-boot-efi`);
const it = existsSync(STUB) ? test : test.skip;

test("placeSections() packs the sections after the stub's, aligned, in ukify's order, whatever their sizes", (t) => {
  inTempDir((dir) => {
    const f = (name: string, size: number) => {
      const p = join(dir, name);
      writeFileSync(p, Buffer.alloc(size));
      return p;
    };
    const layout = { imageBase: 0x1000000n, sectionAlignment: 4096, end: 0x19134, names: [".text", ".sbat"] };
    const placed = placeSections(layout, {
      ".linux": f("linux", 12_000_001),
      ".initrd": f("initrd", 3_000_000),
      ".cmdline": f("cmdline", 100),
      ".osrel": f("osrel", 40),
    });
    t.deepEqual(
      placed.map((p: { name: string }) => p.name),
      [".osrel", ".cmdline", ".initrd", ".linux"],
    );
    let next = 0x1000000n + 0x1a000n;
    for (const p of placed as Array<{ vma: bigint; size: number }>) {
      t.is(p.vma % 4096n, 0n);
      t.true(p.vma >= next, "no overlap");
      next = p.vma + BigInt(p.size);
    }
    t.throws(() => placeSections({ ...layout, names: [".linux"] }, { ".linux": f("l2", 1) }), {
      message: "the stub already has a .linux section",
    });
  });
});

it("buildUki() writes systemd-stub's sections after its own, holding what was given", (t) => {
  inTempDir((dir) => {
    const kernel = join(dir, "vmlinuz");
    const initrd = join(dir, "initrd");
    writeFileSync(kernel, Buffer.alloc(5_000_003, 0x4b));
    writeFileSync(initrd, Buffer.alloc(1_000_001, 0x49));
    const out = join(dir, "uki.efi");
    const r = buildUki({
      stub: STUB,
      kernel,
      initrd,
      cmdline: "roothash=" + "ab".repeat(32) + " console=ttyS0",
      osRelease: "ID=test\n",
      uname: "6.1.0-test",
      out,
    });
    const stub = peLayout(readFileSync(STUB));
    const s = peSections(out);
    t.deepEqual(
      s.map((x) => x.name),
      [...stub.names, ".osrel", ".cmdline", ".uname", ".initrd", ".linux"],
    );
    const b = readFileSync(out);
    const body = (name: string) => {
      const x = s.find((y) => y.name === name) as { virtualSize: number; raw: number };
      return b.subarray(x.raw, x.raw + x.virtualSize);
    };
    t.is(body(".cmdline").toString(), "roothash=" + "ab".repeat(32) + " console=ttyS0\n");
    t.is(body(".uname").toString(), "6.1.0-test");
    t.is(body(".linux").length, 5_000_003);
    t.true(body(".linux").every((v) => v === 0x4b));
    for (let i = 1; i < s.length; i++) t.true(s[i].rva >= s[i - 1].rva + s[i - 1].virtualSize, `${s[i].name} overlaps`);
    t.is(r.size, b.length);
    t.throws(
      () =>
        buildUki({
          stub: STUB,
          kernel,
          initrd,
          cmdline: "roothash=00 storage_init.ddi=/EFI/Linux/os.efi.extra.d/root.raw",
          osRelease: "",
          uname: "",
          out,
        }),
      { message: /lies beside a UKI in <uki>\.efi\.extra\.d\/: systemd-stub would load the whole DDI into memory/ },
    );
    // Every path, every occurrence, either spelling of the key.
    for (const cmdline of [
      "storage_init.ddi=/EFI/a.raw,/loader/extensions/b.raw",
      "storage_init.ddi=/loader/extensions/b.raw storage_init.ddi=/EFI/a.raw",
      'storage-init.ddi="/EFI/a.raw,/LOADER/Extensions/b.raw"',
    ])
      t.throws(
        () => buildUki({ stub: STUB, kernel, initrd, cmdline, osRelease: "", uname: "", out }),
        { message: /names \/(loader|LOADER)\/(extensions|Extensions)\/b\.raw, which lies in \/loader\/extensions\// },
        cmdline,
      );
  });
});

it("buildUki() with a PCR key: .pcrpkey its public half, .pcrsig PCR 11 policies for the stub's measured sections, each signed by it", (t) => {
  inTempDir((dir) => {
    const kernel = join(dir, "vmlinuz");
    const initrd = join(dir, "initrd");
    writeFileSync(kernel, Buffer.alloc(100_001, 0x4b));
    writeFileSync(initrd, Buffer.alloc(10_001, 0x49));
    const pcr = pcrKey();
    const uki = (name: string, cmdline: string, signedFor?: string, uname = "6.1.0-test") =>
      buildUki({
        stub: STUB,
        kernel,
        initrd,
        cmdline,
        osRelease: "ID=test\n",
        uname,
        out: join(dir, name),
        pcr: { ...pcr, cmdline: signedFor },
      }).out;
    const policies = (file: string) => {
      const sig = JSON.parse(readSection(file, ".pcrsig").toString()) as Record<string, Array<Record<string, unknown>>>;
      t.deepEqual(Object.keys(sig), ["sha256"]);
      return sig.sha256 as Array<{ pcrs: number[]; pkfp: string; pol: string; sig: string }>;
    };
    const a = uki("a.efi", "roothash=" + "ab".repeat(32));
    t.is(readSection(a, ".pcrpkey").toString(), readFileSync(pcr.publicKey, "utf8"));
    const key = createPublicKey(readFileSync(pcr.publicKey));
    // systemd's fingerprint of a public key: SHA-256 over its DER (PKCS#1 for RSA: i2d_PublicKey).
    const fingerprint = createHash("sha256")
      .update(key.export({ type: "pkcs1", format: "der" }))
      .digest("hex");
    const signed = policies(a);
    // One per boot phase systemd-pcrphase reaches: enter-initrd, then leave-initrd, sysinit, ready.
    t.is(signed.length, 4);
    for (const p of signed) {
      t.deepEqual(p.pcrs, [11]);
      t.is(p.pkfp, fingerprint);
      // What the TPM checks at TPM2_PolicyAuthorize: the policy digest, signed (RSA, SHA-256).
      t.true(verify("sha256", Buffer.from(p.pol, "hex"), key, Buffer.from(p.sig, "base64")));
    }
    t.is(new Set(signed.map((p) => p.pol)).size, 4, "each phase its own PCR 11 value");
    // Another command line, other policies; signed for the first, the same policies as the first's.
    const b = uki("b.efi", "roothash=" + "ab".repeat(32) + " systemd.debug_shell");
    t.false(policies(b).some((p) => signed.some((q) => q.pol === p.pol)));
    const c = uki("c.efi", "roothash=" + "ab".repeat(32) + " systemd.debug_shell", "roothash=" + "ab".repeat(32));
    t.deepEqual(
      policies(c).map((p) => p.pol),
      signed.map((p) => p.pol),
    );
    // The initrd is measured: another one, other policies. Bookworm's stub (252) measures no
    // .uname: another kernel release in it leaves the policies as they were.
    t.deepEqual(measuredSections(STUB), [".linux", ".osrel", ".cmdline", ".initrd", ".pcrpkey"]);
    writeFileSync(initrd, Buffer.alloc(10_001, 0x4a));
    const d = uki("d.efi", "roothash=" + "ab".repeat(32));
    t.false(policies(d).some((p) => signed.some((q) => q.pol === p.pol)));
    writeFileSync(initrd, Buffer.alloc(10_001, 0x49));
    const e = uki("e.efi", "roothash=" + "ab".repeat(32), undefined, "6.1.0-other");
    t.deepEqual(
      policies(e).map((p) => p.pol),
      signed.map((p) => p.pol),
    );
    // A stub that measures .uname (and .sbat) is refused, not given a policy that never matches.
    const later = join(dir, "later.stub");
    writeFileSync(later, Buffer.concat([readFileSync(STUB), Buffer.from(".uname\0")]));
    t.throws(() => measuredSections(later), { message: /measures \.uname and \.sbat into PCR 11/ });
  });
});

test("the README names the places the UKI build refuses, and only those", (t) => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  t.regex(readme, /Never `<uki>\.efi\.extra\.d\/\*\.raw` or `\/loader\/extensions\/\*\.raw`/);
  t.regex(readme, /The build refuses a DDI path under\s+`\/loader\/extensions\/` or `<uki>\.efi\.extra\.d\/`/);
  t.is(stubLoadsFrom("/loader/extensions/x.raw"), "in /loader/extensions/");
  t.is(stubLoadsFrom("/EFI/Linux/a.efi.extra.d/x.raw"), "beside a UKI in <uki>.efi.extra.d/");
  // systemd-stub reads only *.cred from /loader/credentials/: a DDI there is not loaded.
  t.is(stubLoadsFrom("/loader/credentials/x.raw"), undefined);
});
