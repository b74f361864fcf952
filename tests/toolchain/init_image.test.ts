// What `node build.mjs tests` built: the init binary and the initramfs with every storage class.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { readCpio } from "../../toolchain/initramfs.mjs";
import { decompressedModule, kernelRelease, modulesDirOf } from "../../toolchain/init_image.mjs";
import { DIST } from "../../toolchain/tools.mjs";
import { testIfBuilt } from "../helpers.js";

const INIT = join(DIST, "storage-init");
const INITRD = join(DIST, "initramfs-all.cpio.gz");
/** The init's size budget, in bytes. */
const BUDGET = 600_000;

testIfBuilt(INITRD, "node build.mjs tests")(
  "buildInit() makes one static executable under the budget and an initramfs of it, modules and their table",
  (t) => {
    t.regex(execFileSync("file", [INIT], { encoding: "utf8" }), /ELF 64-bit LSB executable, x86-64.*statically linked/);
    const size = statSync(INIT).size;
    t.true(size < BUDGET, `the init is ${size} bytes; the budget is ${BUDGET}`);
    const names = readCpio(gunzipSync(readFileSync(INITRD))).map((e) => e.path);
    const unexpected = names.filter(
      (n) =>
        ![
          "dev",
          "proc",
          "sys",
          "run",
          "sysroot",
          "dev/console",
          "dev/kmsg",
          "init",
          "modules",
          "modules/table",
          "etc",
          "etc/storage-init",
          "etc/storage-init/build.json",
        ].includes(n) && !/^modules\/[\w-]+\.ko$/.test(n),
    );
    t.deepEqual(unexpected, []);
    t.true(names.includes("modules/virtio_blk.ko") && names.includes("modules/dm-verity.ko"));
    const facts = readCpio(gunzipSync(readFileSync(INITRD))).find((e) => e.path === "etc/storage-init/build.json");
    t.deepEqual(JSON.parse(Buffer.from(facts?.data ?? []).toString()), {
      arch: "x86-64",
      rootPolicy: "verity",
      minVersion: "",
      certificates: "",
    });
  },
);

test("kernelRelease() reads usr/lib/modules where a tree has no lib/modules (Debian 13's packages)", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "si-kernel-"));
  try {
    mkdirSync(join(dir, "usr", "lib", "modules", "6.12.1-amd64"), { recursive: true });
    t.is(kernelRelease(dir), "6.12.1-amd64");
    t.is(modulesDirOf(dir), join(dir, "usr", "lib", "modules", "6.12.1-amd64"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("decompressedModule() decompresses .ko.xz, .ko.gz and .ko.zst and leaves a .ko as it is", (t) => {
  const ko = Buffer.concat([Buffer.from("\x7fELF module"), Buffer.from("~Module signature appended~\n")]);
  t.deepEqual(decompressedModule("loop.ko", ko), { file: "loop.ko", data: ko });
  const xz = execFileSync("xz", ["-c"], { input: ko });
  t.deepEqual(decompressedModule("loop.ko.xz", xz), { file: "loop.ko", data: ko });
  t.deepEqual(decompressedModule("loop.ko.gz", gzipSync(ko)), { file: "loop.ko", data: ko });
  const zst = execFileSync("zstd", ["-c"], { input: ko });
  t.deepEqual(decompressedModule("loop.ko.zst", zst), { file: "loop.ko", data: ko });
  t.throws(() => decompressedModule("loop.ko.xz", Buffer.from("not xz")));
});

test("kernelRelease() takes the one release under lib/modules and names anything else", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "si-kernel-"));
  try {
    t.throws(() => kernelRelease(dir), { message: /lib\/modules: no such directory/ });
    mkdirSync(join(dir, "lib", "modules", "6.1.0-1-amd64"), { recursive: true });
    t.is(kernelRelease(dir), "6.1.0-1-amd64");
    mkdirSync(join(dir, "lib", "modules", "6.1.0-2-amd64"));
    t.throws(() => kernelRelease(dir), {
      message: /holds 2 kernel releases \(6\.1\.0-1-amd64, 6\.1\.0-2-amd64\); expected one$/,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
