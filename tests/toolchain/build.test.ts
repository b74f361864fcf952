// build.mjs's command line: what it refuses before it compiles anything; the DDI it carries in memory.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildDisk } from "../../qemu/images.js";
import { ddiArchive, initrdWithDdi, memoryPathOf } from "../../toolchain/init_image.mjs";
import { readCpio } from "../../toolchain/initramfs.mjs";
import { ROOT } from "../../toolchain/tools.mjs";
import { checkMemoryDdi } from "../../cli/check.js";

/** The test disk as it should be (qemu/images.ts). */
const PLAIN = {};

/** What `node build.mjs ...args` writes to stderr; each case stops before the compile. */
function refusal(...args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, "build.mjs"), ...args], { cwd: ROOT, encoding: "utf8" });
  return r.stderr.trim();
}

test("build.mjs --uki checks --roothash as the init checks roothash=", (t) => {
  t.is(refusal("--uki", "--roothash", "abc"), "build: --roothash has an odd number of digits (3)");
  t.is(refusal("--uki", "--roothash", "ab".repeat(65)), "build: --roothash has 130 digits; expected 32 to 128");
  t.is(refusal("--uki", "--roothash", ""), "build: --roothash is empty");
  // Taken (SHA-1's 40 digits, upper case): the next check, of --arch, is what stops the build.
  t.is(refusal("--uki", "--roothash", "AB".repeat(20), "--arch", "none"), "build: --arch none: x86-64 or arm64");
  t.regex(refusal("--uki", "--arch", "none"), /^build: --uki needs --roothash with the DDI's root hash: /);
  t.is(refusal("--uki", "--root-policy", "signed", "--arch", "none"), "build: --arch none: x86-64 or arm64");
});

test("build.mjs --ddi refuses, before it compiles, a DDI the root hash it is given does not pin, saying why", async (t) => {
  const disk = await buildDisk(PLAIN);
  const other = "0123456789abcdef".repeat(4);
  const r = spawnSync(process.execPath, [join(ROOT, "build.mjs"), "--ddi", disk.ddi, "--roothash", other], {
    cwd: ROOT,
    encoding: "utf8",
  });
  t.is(r.status, 1);
  t.regex(r.stdout, /build: --ddi: refused: .*roothash=/);
  t.is(r.stderr.trim(), `build: --ddi ${disk.ddi}: the command line (roothash=${other}) would not take it`);
  t.notRegex(r.stdout, /porffor|musl-gcc/, "nothing was compiled");
  t.regex(refusal("--ddi", disk.ddi), /^build: --ddi needs --roothash with the root hash the command line pins/);
  t.is(refusal("--ddi", "/nonexistent.raw", "--roothash", other), "build: --ddi /nonexistent.raw: no such file");
  t.true(refusal("--roothash", other).startsWith("build: --roothash is for --uki or --ddi; usage: node build.mjs "));
});

test("the DDI's archive holds it read-only under /ddi, and the initrd appends it on a 4-byte boundary", async (t) => {
  const disk = await buildDisk(PLAIN);
  const data = readFileSync(disk.ddi);
  t.is(memoryPathOf(disk.ddi, "/EFI/storage-init/root.raw"), "/ddi/root.raw");
  t.is(memoryPathOf("/x/root_2.raw", "/EFI/os/root.v/"), "/ddi/root.v/root_2.raw");
  t.is(
    memoryPathOf("/x/root_2.raw", "/EFI/os/root.v"),
    "/ddi/root.v/root_2.raw",
    "a vpick directory without its slash",
  );
  const entries = readCpio(ddiArchive(disk.ddi, "/ddi/root.v/root_2.raw"));
  t.deepEqual(
    entries.map((e) => [e.path, e.type, e.mode]),
    [
      ["ddi", "dir", 0o755],
      ["ddi/root.v", "dir", 0o755],
      ["ddi/root.v/root_2.raw", "file", 0o444],
    ],
  );
  t.true(Buffer.from(entries[2].data ?? "").equals(data));
  const dir = mkdtempSync(join(tmpdir(), "initrd-"));
  const init = join(dir, "init.cpio.gz");
  writeFileSync(init, Buffer.alloc(4097, 7));
  const archive = ddiArchive(disk.ddi, "/ddi/root.raw");
  initrdWithDdi(init, archive, join(dir, "out"));
  const out = readFileSync(join(dir, "out"));
  t.is(out.length, 4100 + archive.length);
  t.true(out.subarray(4100).equals(archive), "then the DDI's archive, whole");
  t.true(out.subarray(4097, 4100).equals(Buffer.alloc(3)), "zeros up to the boundary");
  t.is(out.subarray(4100, 4106).toString(), "070701", "the DDI's archive starts there");
  rmSync(dir, { recursive: true });
});

test("the build's check takes a DDI in memory as the boot lists it: a vpick directory's entry must be named as one", async (t) => {
  const disk = await buildDisk(PLAIN);
  const cmdline = `roothash=${disk.rootHash} storage_init.ddi=/EFI/os/root.v/`;
  const ok = checkMemoryDdi(disk.ddi, "/ddi/root.v/root_2.raw", cmdline);
  t.true(ok.ok, ok.lines.join("\n"));
  t.true(ok.lines.includes("  root hash recomputed over the data: matches roothash="));
  const unnamed = checkMemoryDdi(disk.ddi, "/ddi/root.v/root.raw", cmdline);
  t.false(unnamed.ok);
  t.is(unnamed.lines.at(-1), "refused: /root.v/ holds no DDI for x86-64", unnamed.lines.join("\n"));
  t.true(
    unnamed.lines.some((l) => /root\.raw: not named root_VERSION\.raw/.test(l)),
    unnamed.lines.join("\n"),
  );
  const plain = checkMemoryDdi(disk.ddi, "/ddi/root.raw", `roothash=${disk.rootHash}`);
  t.true(plain.ok, plain.lines.join("\n"));
});
