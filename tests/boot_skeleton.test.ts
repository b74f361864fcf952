// Boots the init built by `node build.mjs tests` (dist/) on a real Debian kernel under QEMU: it must mount the API
// file systems, log its banner with the command line as PID 1, and power off cleanly.
import test from "ava";
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";

const ROOT = process.cwd();
type Boot = { output: string; code: number | null; timedOut: boolean; ms: number };
const DIST = join(ROOT, "dist");
const initramfs = join(DIST, "initramfs.cpio.gz");
const { fetchKernel } = (await import(join(ROOT, "qemu", "kernel.mjs"))) as { fetchKernel: () => { vmlinuz: string } };
const { bootQemu } = (await import(join(ROOT, "qemu", "boot.mjs"))) as { bootQemu: (o: object) => Promise<Boot> };

test("the bare init boots as PID 1, logs its banner and powers off cleanly", async (t) => {
  const binarySize = statSync(join(DIST, "storage-init")).size;
  t.true(binarySize < 400 * 1000, `binary is ${binarySize} bytes`);
  t.regex(execFileSync("file", [join(DIST, "storage-init")], { encoding: "utf8" }), /statically linked/);
  const kernel = fetchKernel();
  const r = await bootQemu({ kernel: kernel.vmlinuz, initrd: initramfs, append: 'storage_init.debug marker="a b"', timeoutMs: 120000 });
  t.false(r.timedOut, r.output);
  t.regex(r.output, /storage-init: version \d+\.\d+\.\d+, pid 1, kernel command line: console=ttyS0 panic=-1 storage_init\.debug marker="a b"/);
  t.regex(r.output, /storage-init: powering off/);
  t.regex(r.output, /reboot: Power down/);
  t.notRegex(r.output, /Kernel panic|Attempted to kill init/);
  t.is(r.code, 0);
});

test("a bad command line is one clear line and the configured action, not a panic", async (t) => {
  const kernel = fetchKernel();
  const r = await bootQemu({
    kernel: kernel.vmlinuz,
    initrd: initramfs,
    append: "roothash=nothex storage_init.on_failure=poweroff storage_init.failure_delay=0",
    timeoutMs: 120000,
  });
  t.false(r.timedOut, r.output);
  t.regex(r.output, /storage-init: failed to read the kernel command line: kernel command line: roothash= is not hexadecimal: "nothex"/);
  t.regex(r.output, /reboot: Power down/);
  t.notRegex(r.output, /Kernel panic|Attempted to kill init/);
});
