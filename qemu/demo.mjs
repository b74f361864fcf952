// `npm start`: the real path. Builds the init (virtio storage class: what the demo VM has) and a
// UKI of Debian's kernel with it and the demo's roothash=, puts systemd-boot, the UKI and the
// demo DDI (Debian with systemd, verity-protected) on an ESP, and boots it under OVMF:
// firmware -> systemd-boot -> systemd-stub -> storage-init -> systemd to multi-user.target.
// Shows the serial console as it comes, then the timeline from the kernel's own timestamps (also
// drawn: .build/demo/timeline.svg) and what systemd-analyze reported inside the booted system.
//
//   npm start                      the UEFI boot above
//   npm start -- --no-boot-loader  the firmware starts the UKI itself (systemd-stub sets
//                                  LoaderDevicePartUUID)
//   npm start -- --direct          QEMU loads the kernel and initramfs itself (no firmware, no UKI)
//   npm start -- --second-stage    the two-stage boot of a machine with full-disk encryption:
//                                  the DDI on the ESP is Debian's systemd as an initrd; it
//                                  measures enter-initrd, unlocks the LUKS2 root with the TPM
//                                  (swtpm) under the UKI's signed PCR 11 policy, activates LVM
//                                  and switches into the ext4 root (qemu/encrypted_root.ts;
//                                  x86-64; the first run builds the second stage and the disk,
//                                  about three minutes)
//   npm start -- --debian trixie   Debian 13: its kernel (6.12, its modules decompressed at build
//                                  time) and a root with its systemd (257); bookworm (12, the
//                                  build machine's own) unless told
//   npm start -- --arch arm64      the same on QEMU's arm64 virt machine under AAVMF, with the
//                                  init and UKI cross-built for Debian's arm64 kernel, and
//                                  Debian's arm64 systemd in the DDI (debootstrap --foreign here,
//                                  its second stage in an arm64 VM: qemu/foreign_root.ts; the
//                                  first run takes several minutes)
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { buildInit } from "../toolchain/build_init.mjs";
import { ARCHES, isArch } from "../toolchain/arches.ts";
import { DEBIAN_RELEASES, DEFAULT_RELEASE } from "../toolchain/debian.mjs";
import { kib, ROOT } from "../toolchain/tools.mjs";
import { bootQemu, consoleArgs } from "./boot.ts";
import { buildDemoDisk, DEMO_DDI_ARG, DEMO_DDI_PATH } from "./demo_root.mjs";
import { buildEncryptedRoot, pcrKey, tpmFor, UNLOCK_ARGS } from "./encrypted_root.ts";
import { fetchKernel } from "./kernel.mjs";
import { buildSecondStage } from "./second_stage.ts";
import { analyzeTable, timeline, timelineSvg } from "./timeline.mjs";
import { buildUefiDisk, DEMO_ESP_PART_UUID, firmware } from "./uefi.mjs";

const direct = process.argv.includes("--direct");
const archAt = process.argv.indexOf("--arch");
const archArg = archAt > 0 ? process.argv[archAt + 1] : "x86-64";
if (!isArch(archArg)) throw new Error(`--arch ${archArg}: ${Object.keys(ARCHES).join(" or ")}`);
const arch = archArg;
const arm = arch === "arm64";
const secondStage = process.argv.includes("--second-stage");
if (secondStage && (arm || direct || process.argv.includes("--no-boot-loader")))
  throw new Error("--second-stage is a UEFI boot through systemd-boot with a TPM, on x86-64");
const releaseAt = process.argv.indexOf("--debian");
const release = releaseAt > 0 ? process.argv[releaseAt + 1] : DEFAULT_RELEASE;
if (!(release in DEBIAN_RELEASES)) throw new Error(`--debian ${release}: ${Object.keys(DEBIAN_RELEASES).join(" or ")}`);
if (release !== DEFAULT_RELEASE && (arm || secondStage))
  throw new Error(`--debian ${release} is a single-stage boot on x86-64`);
const debianVersion = DEBIAN_RELEASES[release].version;
const kernel = fetchKernel(arch, release);
const built = await buildInit({ kernelDir: kernel.root, storage: ["virtio"], arch });
/**
 * The two-stage boot's options: the ESP with systemd-boot, the UKI (its PCR 11 policy signed)
 * and the second stage; the encrypted disk; the TPM it was sealed to (x86-64).
 * @returns {Promise<import("./boot.ts").BootOptions>}
 */
async function secondStageBoot() {
  const stage = await buildSecondStage();
  const dir = join(ROOT, ".build", "demo-second-stage");
  mkdirSync(dir, { recursive: true });
  const disk = await buildEncryptedRoot();
  const u = buildUefiDisk(dir, {
    kernel,
    initrd: built.initramfs,
    // systemd's messages with the kernel's timestamps, for the timeline.
    cmdline: `${consoleArgs("x86-64")} roothash=${stage.rootHash} systemd.show_status=1 ${UNLOCK_ARGS} systemd.log_target=kmsg printk.devkmsg=on`,
    ddi: stage.ddi,
    espPartUuid: DEMO_ESP_PART_UUID,
    osRelease: 'ID=debian\nPRETTY_NAME="Debian 12 (storage-init, second stage)"\n',
    pcr: pcrKey(),
  });
  console.log(
    `demo: OVMF + TPM -> systemd-boot -> UKI ${kib(u.ukiSize)} (signed PCR 11 policy; init ${kib(built.binarySize)}, ` +
      `initramfs ${kib(built.initramfsSize)}) -> second stage (${(stage.bytes / 2 ** 20).toFixed(1)} MiB DDI) -> LUKS2 -> LVM -> ext4`,
  );
  // The disk a throw-away snapshot.
  return {
    firmware: firmware(dir),
    tpm: tpmFor(disk, dir),
    drives: [
      { file: u.disk, if: "virtio" },
      { file: disk.disk, if: "virtio", readonly: "snapshot" },
    ],
  };
}

/**
 * The single-stage boot's options: the demo's DDI (Debian with systemd), loaded with the
 * kernel directly or through OVMF, systemd-boot and the UKI.
 * @returns {Promise<import("./boot.ts").BootOptions>}
 */
async function singleStageBoot() {
  const demo = await buildDemoDisk(release, arch);
  const cmdline = `roothash=${demo.rootHash} systemd.show_status=1`;
  if (direct) {
    console.log(`demo: kernel ${kernel.package}, init ${kib(built.binarySize)}, initramfs ${kib(built.initramfsSize)}`);
    return {
      arch,
      kernel: kernel.vmlinuz,
      initrd: built.initramfs,
      append: cmdline,
      drives: [{ file: demo.disk, if: "virtio" }],
    };
  } else {
    const dir = join(ROOT, ".build", "demo");
    mkdirSync(dir, { recursive: true });
    const u = buildUefiDisk(dir, {
      kernel,
      initrd: built.initramfs,
      // The Debian demo's DDI lies in a vpick directory with boot counting (qemu/demo_root.mjs).
      cmdline: `${consoleArgs(arch)} ${cmdline} ${DEMO_DDI_ARG}`,
      ddi: demo.ddi,
      ddiPath: DEMO_DDI_PATH,
      espPartUuid: DEMO_ESP_PART_UUID,
      direct: process.argv.includes("--no-boot-loader"),
      arch,
      osRelease: `ID=debian\nPRETTY_NAME="Debian ${debianVersion} (storage-init demo${arm ? ", arm64" : ""})"\n`,
    });
    console.log(
      `demo: ${arm ? "AAVMF" : "OVMF"} -> ${process.argv.includes("--no-boot-loader") ? "" : "systemd-boot -> "}UKI ${kib(u.ukiSize)} (kernel ${kernel.package}, init ${kib(built.binarySize)}, ` +
        `initramfs ${kib(built.initramfsSize)})`,
    );
    // Writable: the booted system counts the DDI's tries on the ESP.
    return { arch, firmware: firmware(dir, { arch }), drives: [{ file: u.disk, if: "virtio", readonly: false }] };
  }
}

const boot = secondStage ? await secondStageBoot() : await singleStageBoot();
const t0 = performance.now();
/** @type {number | undefined} */
let kernelAt;
const r = await bootQemu({
  ...boot,
  memory: 1024,
  timeoutMs: 300000,
  onLine: (l) => {
    if (kernelAt === undefined && /Linux version/.test(l)) kernelAt = performance.now() - t0;
    console.log(l);
  },
});
console.log("\n" + timeline(r.output));
const picture = join(
  ROOT,
  ".build",
  secondStage ? "demo-second-stage" : "demo",
  `timeline${release === DEFAULT_RELEASE ? "" : "-" + release}.svg`,
);
mkdirSync(dirname(picture), { recursive: true });
writeFileSync(
  picture,
  timelineSvg(r.output, `npm start${secondStage ? " -- --second-stage" : ""}: ${kernel.package}, QEMU TCG`),
);
console.log(`the timeline as a picture: ${relative(ROOT, picture)}`);
const atKernel = /** @type {number | undefined} */ (kernelAt);
if (atKernel !== undefined)
  console.log(
    `\nhost clock: QEMU's start -> the kernel's first line ${(atKernel / 1000).toFixed(1)} s (firmware, loader, stub)`,
  );
console.log("\n" + analyzeTable(r.output));
if (r.timedOut || !/ROOT-REACHED/.test(r.output)) {
  console.error(r.timedOut ? "demo: the boot did not finish within 300 s" : "demo: the root was not reached");
  process.exit(1);
}
