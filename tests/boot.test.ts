// End-to-end boots: Debian's kernel, dist/initramfs-all.cpio.gz (built by `node build.mjs tests`
// with every storage class), and test disks made by qemu/images.ts with the real tools:
//
//   disk.img  GPT (sgdisk)
//   └─ p1  ESP (vfat: mkfs.vfat + mtools), PARTUUID 6b1e7d2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d
//          └─ /EFI/storage-init/root.raw   DDI: GPT
//               ├─ p1 root (x86-64)        erofs of a root whose /sbin/init prints ROOT-REACHED
//               └─ p2 root-verity (x86-64) veritysetup format of p1 (sha256, 4 KiB blocks)
//
// Each case is a row of SCENARIOS (tests/scenario.ts: the machine, its firmware and UKI or the
// kernel loaded directly, the drives and their interfaces, the kernel command line, the console
// lines expected) and a test that boots it and asserts the rest. Failure cases assert the exact
// error line and that the configured action happens within its bound, never a kernel panic from
// PID 1 exiting.
// One case by name: node build.mjs tests && npx ava tests/boot.test.ts -m 'boot: NVMe*'; naming its
// scenario in STORAGE_INIT_SCENARIOS (comma-separated) keeps the others' images from being built:
// STORAGE_INIT_SCENARIOS='second stage debian' npx ava tests/boot.test.ts -m 'second stage: *'
import test from "ava";
import type { ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Boot, DriveInterface } from "../qemu/boot.js";
import { DEMO_DDI_ARG, DEMO_DDI_PATH } from "../qemu/demo_root.mjs";
import { LUKS_PASSPHRASE, LUKS_UUID, UNLOCK_ARGS } from "../qemu/encrypted_root.js";
import type { TestKeyName } from "../qemu/images.js";
import type { Arch } from "../toolchain/arches.js";
import { WORK } from "../toolchain/tools.mjs";
import { ESP_PART_UUID } from "../qemu/test_disk.js";
import { analyzeInitrd, stampedLines, stampsOf } from "../qemu/timeline.mjs";
import { DEMO_ESP_PART_UUID } from "../qemu/uefi.mjs";
import { fatalLine, literally, verdictCase } from "./cases.js";
import { bootScenario, noPanic, prepare, testFor } from "./scenario.js";
import type { Ddi, DiskSource, EspDdi, Expect, Scenario, ScenarioDrive, Uefi } from "./scenario.js";

const it = testFor("x86-64");
const itArm = testFor("arm64");

/** The test disk as it should be; as a DDI source, its DDI. */
const PLAIN = { variant: {} };
/** The drive holding the UKI's ESP. */
const UKI: ScenarioDrive = { disk: { uki: true } };
const OK = "roothash=HASH storage_init.timeout=20";
const AB = "/EFI/storage-init/root.v";
/** The UEFI cases' ESP: not the test disk's PARTUUID, so that a decoy ESP of the test disks can sit beside it. */
const UEFI_ESP_PART_UUID = "5eb05eb0-1d2c-4e3f-8a9b-0c1d2e3f4a5b";
const MOK_ESP_PART_UUID = "5eb05eb0-1d2c-4e3f-8a9b-0c1d2e3f4a5c";

/** The fatal line of a DDI whose erofs data was changed after the root hash was taken. */
const TAMPERED = fatalLine(verdictCase("one flipped byte in the erofs superblock is stopped by dm-verity"), "");
const NO_ESP =
  "storage-init: failed to find the ESP: no partition of vda, vda1 is it; waited 3 s for the ESP (the ESP partition type); no DDI in memory";
const NO_DISK =
  "storage-init: failed to find the ESP: no disk appeared; waited 2 s for the ESP (the ESP partition type); no DDI in memory";
const NO_MODULE =
  'load module virtio_blk (for virtio:d00000002v00001AF4): "/modules/virtio_blk.ko" is missing from the initramfs';

function reached(esp: RegExp, modules: string[], phases?: string[]): Expect {
  return { reached: { esp, modules, phases } };
}

function failed(
  line: string | RegExp,
  action: "reboot" | "poweroff",
  delayS: number,
  mounted: boolean = false,
): Expect {
  return { failed: { line, action, delayS, mounted } };
}

/** The ESP found by its partition type on `node` (a regular expression), and the modules that must have loaded. */
function byType(node: string, modules: string[]): Expect {
  return reached(new RegExp(`storage-init: ESP ${node} \\(found by the ESP partition type\\)`), modules);
}

/** The ESP found by LoaderDevicePartUUID (the UEFI boots) on `node`. */
function byLoader(node: string, modules: string[], phases?: string[]): Expect {
  return reached(new RegExp(`storage-init: ESP ${node} \\(found by LoaderDevicePartUUID\\)`), modules, phases);
}

/** The test disk as it should be on `iface`, the kernel loaded directly with OK. */
function plainOn(iface: DriveInterface, expect: Expect, arch: Arch = "x86-64"): Scenario {
  return { arch, drives: [{ disk: PLAIN, if: iface }], cmdline: OK, expect };
}

/** A DDI systemd-repart made at `path` on an ESP: `version`, signed by `signWith`, its signature corrupted. */
function repart(path: string, version: string, signWith?: TestKeyName, corruptSignature?: boolean): EspDdi {
  return { path, ddi: { repart: { version, signWith, corruptSignature } } };
}

/**
 * Signed DDIs: systemd-repart (Verity=data/hash/signature, --private-key, --certificate) signs
 * with a test key (qemu/images.ts testKey); the machine has Secure Boot on, shim (signed with
 * the firmware's test key) starts systemd-boot, and `moks` ("mok" unless given) are enrolled as
 * Machine Owner Keys in the variable store (MokList): shim mirrors them to MokListRT and
 * MokListTrustedRT, and the kernel trusts them for dm-verity through its .machine and
 * secondary keyrings. A machine with DKMS has its own MOK besides the vendor's.
 */
function shim(ddis: EspDdi[], moks: TestKeyName[] = ["mok"], spareBytes?: number): Uefi {
  return { loader: "shim", secureBoot: true, mok: moks, ddis, partUuid: MOK_ESP_PART_UUID, spareBytes };
}

/** A DDI signed by systemd-repart with the "other" key, which no machine here trusts (a key only the build pipeline knows), on a plain ESP disk. */
function untrusted(arch: Arch, cmdline: string, expect: Scenario["expect"]): Scenario {
  const disk: DiskSource = { esp: [repart("/EFI/storage-init/root.raw", "1", "other")] };
  return {
    arch,
    drives: [{ disk, if: arch === "arm64" ? "virtio-mmio" : "virtio" }],
    cmdline: `roothash=HASH storage_init.timeout=20 ${cmdline}`,
    expect,
  };
}

/** The fatal line of the untrusted DDI's signature under storage_init.root_policy=signed. */
function enokey(ddis: Ddi[]): Expect {
  return failed(
    `storage-init: failed to set up the root device: the kernel refused the signature of root hash ${ddis[0].rootHash} (certificate SHA-256 ${ddis[0].fingerprint}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it`,
    "poweroff",
    0,
  );
}

/** A signed case's command line: the signed policy, the test keys `SIGNERS:...` pins, and `more`. */
function signedCmdline(more: string = "", signers: string = "mok"): string {
  return `storage_init.timeout=20 storage_init.root_policy=signed SIGNERS:${signers}${more === "" ? "" : " " + more}`;
}

/**
 * A case of tests/cases.ts, which the check runs too, booted: its disk on virtio, its command
 * line and `more`; refused, the fatal line is "failed to <its doing>: <its reason>" and
 * `action` follows after `delayS`.
 */
function verdict(
  name: string,
  more: string,
  outcome: Expect | { action: "reboot" | "poweroff"; delayS: number; mounted?: true },
): Scenario {
  const c = verdictCase(name);
  const scenario = { drives: [{ disk: { variant: c.disk } }], cmdline: `${c.cmdline} ${more}`.trim() };
  if (c.reason === undefined) {
    if (!("reached" in outcome)) throw new Error(`${name}: the boot reaches the root`);
    return { ...scenario, expect: outcome };
  }
  if (!("action" in outcome)) throw new Error(`${name}: the boot refuses it`);
  return {
    ...scenario,
    expect: (ddis) => failed(fatalLine(c, ddis[0]?.rootHash ?? ""), outcome.action, outcome.delayS, outcome.mounted),
  };
}

/** The second stage with the encrypted root (a throw-away snapshot of it: the root is mounted read-write). */
const TPM_CMDLINE = `roothash=HASH storage_init.timeout=20 ${UNLOCK_ARGS} systemd.log_target=kmsg printk.devkmsg=on`;

/** The root from the DDI in memory: no storage driver, no ESP. */
const IN_MEMORY: Expect = {
  reached: {
    esp: /storage-init: root from \/ddi\/root\.raw in the initramfs\r?$/m,
    modules: ["loop", "dm_verity", "erofs"],
    phases: ["api", "cmdline", "coldplug", "ddi", "verity", "mount", "switch-root"],
    inMemory: true,
  },
};

/** The phases of one ESP's DDI activated, mounted and released. */
const TRIED = ["esp", "ddi", "verity", "mount"];

/**
 * The demo (npm start): Debian with systemd in the DDI (debootstrap, cached), in a vpick
 * directory with boot counting.
 */
const DEMO: Scenario = {
  uefi: {
    loader: "systemd-boot",
    ddis: [{ ddi: { demo: true }, path: DEMO_DDI_PATH }],
    partUuid: DEMO_ESP_PART_UUID,
  },
  // Writable: the booted system counts its DDI's tries on the ESP.
  drives: [{ ...UKI, writable: true }],
  cmdline: `roothash=HASH ${DEMO_DDI_ARG}`,
  memory: 1024,
  timeoutMs: 300000,
};

/** Secure Boot enforced: the firmware's test key signs systemd-boot and the UKI. */
const SECURE_BOOT_UEFI: Uefi = {
  loader: "systemd-boot",
  secureBoot: true,
  ddis: [{ ddi: PLAIN }],
  partUuid: UEFI_ESP_PART_UUID,
};
const SECURE_BOOT: Scenario = {
  uefi: SECURE_BOOT_UEFI,
  drives: [UKI],
  cmdline: OK,
  expect: byLoader("/dev/vda1", ["virtio_blk"]),
};

/** The same with one digit of roothash= changed in the UKI after signing. */
const SECURE_BOOT_TAMPERED: Scenario = {
  uefi: { ...SECURE_BOOT_UEFI, tamper: true },
  drives: [UKI],
  cmdline: OK,
  stopOn: /No bootable option or device was found/,
};

/** A DDI systemd-repart signed with the enrolled MOK, no roothash=. */
const SIGNED: Scenario = {
  uefi: shim([repart("/EFI/storage-init/root.raw", "1", "mok")]),
  drives: [UKI],
  cmdline: signedCmdline(),
  expect: byLoader("/dev/vda1", ["dm_verity require_signatures=1"]),
};

/** An A/B directory of three DDIs, each refused: by another key, a corrupted signature, none. */
function allRefused(arch: Arch): Scenario {
  return {
    arch,
    uefi: shim([
      repart(`${AB}/root_3.raw`, "3", "other"),
      repart(`${AB}/root_2.raw`, "2", "mok", true),
      repart(`${AB}/root_1.raw`, "1"),
    ]),
    drives: [UKI],
    // Both keys pinned: the kernel's keyrings refuse "other".
    cmdline: signedCmdline(
      `storage_init.ddi=${AB}/ storage_init.on_failure=poweroff storage_init.failure_delay=0`,
      "mok,other",
    ),
    expect: (ddis) => {
      const fp = (d: Ddi) => `certificate SHA-256 ${d.fingerprint}`;
      return failed(
        `storage-init: failed to open the DDI ${AB}/: none of the 3 DDIs is usable: ` +
          `/dev/vda1 ${AB}/root_3.raw: the kernel refused the signature of root hash ${ddis[0].rootHash} (${fp(ddis[0])}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it; ` +
          // A byte of the RSA signature value changed: its padding no longer decodes (EINVAL).
          `/dev/vda1 ${AB}/root_2.raw: the kernel refused the signature of root hash ${ddis[1].rootHash} (${fp(ddis[1])}): EINVAL, its signature value does not decode, as when it was corrupted; ` +
          `/dev/vda1 ${AB}/root_1.raw: the DDI has no root-verity-sig partition for ${arch}, and storage_init.root_policy=signed takes only signed roots`,
        "poweroff",
        0,
      );
    },
  };
}

/** An A/B directory: a renamed old DDI, a corrupted newer one, then the one that boots. */
const NEWEST_VERIFYING: Scenario = {
  uefi: shim([
    // Version 1, signed, copied to a newer name: its own os-release says 1.
    repart(`${AB}/root_4.raw`, "1", "mok"),
    repart(`${AB}/root_3.raw`, "3", "mok", true),
    repart(`${AB}/root_2.raw`, "2", "mok"),
    repart(`${AB}/root_1.raw`, "1", "mok"),
  ]),
  drives: [UKI],
  cmdline: signedCmdline(`storage_init.ddi=${AB}/`),
  // Each DDI tried: phase ddi, verity, and mount for the renamed one, which is mounted, read and released.
  expect: byLoader(
    "/dev/vda1",
    [],
    [
      "api",
      "cmdline",
      "coldplug",
      "esp",
      "ddi",
      "verity",
      "mount",
      "ddi",
      "verity",
      "ddi",
      "verity",
      "mount",
      "switch-root",
    ],
  ),
};

const SCENARIOS = {
  // ---- happy paths ----
  virtio: verdict(
    "the DDI on the ESP, roothash= pinning it",
    "storage_init.timeout=20",
    byType("/dev/vda1", ["virtio_pci", "virtio_blk", "vfat", "loop", "dm_verity", "erofs"]),
  ),
  nvme: plainOn("nvme", byType("/dev/nvme0n1p1", ["nvme_core", "nvme"])),
  scsi: plainOn("scsi", byType("/dev/sda1", ["virtio_scsi", "sd_mod"])),
  ahci: plainOn("ahci", byType("/dev/sda1", ["ahci", "sd_mod"])),
  "second stage": {
    drives: [{ disk: { variant: { secondStage: true } } }],
    cmdline: OK,
    expect: { reached: { esp: /storage-init: ESP \/dev\/vda1 /, modules: ["erofs", "overlay"], secondStage: true } },
  },
  "second stage debian": {
    // vda: the ESP with the second stage, Debian's systemd as an initrd DDI; vdb: the real root,
    // ext4 on the whole disk, which that systemd mounts from root= (storage-init ignores root=).
    // fsck.mode=skip: the disk is read-only; e2fsck fails on it (exit status 8, an operational
    // error), which systemd-fsck would log and ignore.
    drives: [{ disk: { esp: [{ ddi: { secondStage: true } }] } }, { disk: { finalRoot: true } }],
    pin: { secondStage: true },
    cmdline:
      "roothash=HASH storage_init.timeout=20 root=/dev/vdb fsck.mode=skip systemd.log_target=kmsg printk.devkmsg=on",
    memory: 1024,
    timeoutMs: 300000,
  },
  "second stage tpm": {
    // An installed machine with full-disk encryption: vda the ESP with systemd-boot, the UKI
    // (its PCR 11 policy signed) and the second stage; vdb LUKS2 -> LVM -> ext4, the key sealed
    // to the TPM under that policy. No passphrase is ever asked for (headless).
    uefi: { loader: "systemd-boot", ddis: [{ ddi: { secondStage: true } }], partUuid: UEFI_ESP_PART_UUID, pcr: {} },
    drives: [UKI, { disk: { encryptedRoot: true } }],
    pin: { secondStage: true },
    tpm: true,
    cmdline: TPM_CMDLINE,
    memory: 1024,
    timeoutMs: 300000,
  },
  "second stage tpm changed cmdline": {
    // The same, but the UKI's command line gained a debug shell after its policy was signed.
    uefi: {
      loader: "systemd-boot",
      ddis: [{ ddi: { secondStage: true } }],
      partUuid: UEFI_ESP_PART_UUID,
      pcr: { changedAfterSigning: "systemd.debug_shell" },
    },
    drives: [UKI, { disk: { encryptedRoot: true } }],
    pin: { secondStage: true },
    tpm: true,
    cmdline: TPM_CMDLINE,
    memory: 1024,
    stopOn: /Failed to start systemd-cryptsetup@/,
  },
  "ddi path": {
    drives: [{ disk: { variant: { ddiPath: "/images/My OS/root.raw" } } }],
    cmdline: OK + ' "storage_init.ddi=/images/My OS/root.raw"',
    expect: reached(/storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]),
  },
  "cloned ESP": {
    // vda is another system's disk with the same ESP PARTUUID (a clone); its DDI is not this hash's.
    drives: [{ disk: { variant: { hash: "sha512" } } }, { disk: PLAIN }],
    cmdline: OK + " storage_init.esp=PARTUUID=" + ESP_PART_UUID,
    expect: reached(
      /storage-init: ESP \/dev\/vdb1 \(found by storage_init\.esp=PARTUUID=[0-9a-f-]{36}\)/,
      ["virtio_blk"],
      ["api", "cmdline", "coldplug", "esp", "ddi", "esp", "ddi", "verity", "mount", "switch-root"],
    ),
  },
  "backup GPT": {
    drives: [{ disk: { variant: { corruptPrimaryGpt: true } } }],
    cmdline: OK,
    expect: reached(
      /storage-init: ESP at \/dev\/vda bytes 1048576\+\d+ \(found by the ESP partition type; the kernel made no partition node\) on \/dev\/loop0/,
      ["virtio_blk"],
    ),
  },
  "late disk": {
    // No disk at boot; hot-plugged into a PCIe root port 3 s after the init starts.
    drives: [{ disk: PLAIN, plug: { after: /storage-init: version /, delayMs: 3000 } }],
    cmdline: "roothash=HASH storage_init.timeout=40",
    expect: reached(/storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]),
  },
  sha512: { drives: [{ disk: { variant: { hash: "sha512" } } }], cmdline: OK },
  sha1: { drives: [{ disk: { variant: { hash: "sha1" } } }], cmdline: OK + " storage_init.allow_weak_hash" },
  "128 LUNs": {
    // A burst of devices as when an HBA scans a JBOD: 128 blank LUNs, then the ESP's disk.
    drives: [
      ...Array.from({ length: 128 }, (): ScenarioDrive => ({ disk: { blank: 1 << 20 }, if: "scsi-lun" })),
      { disk: PLAIN, if: "scsi-lun" },
    ],
    cmdline: OK + " storage_init.timeout=60",
    expect: byType("/dev/sd[a-z]+1", ["virtio_scsi", "sd_mod"]),
  },

  // ---- UEFI: OVMF, systemd-boot, the UKI ----
  "uefi systemd-boot": {
    uefi: { loader: "systemd-boot", ddis: [{ ddi: PLAIN }], partUuid: UEFI_ESP_PART_UUID },
    // vda is a disk whose ESP has no DDI (and no loader: the firmware goes on to vdb).
    drives: [{ disk: { variant: { omitDdi: true } } }, UKI],
    cmdline: OK,
    expect: byLoader("/dev/vdb1", ["virtio_blk"]),
  },
  "uefi direct": {
    uefi: { loader: "uki", ddis: [{ ddi: PLAIN }], partUuid: UEFI_ESP_PART_UUID },
    drives: [UKI],
    cmdline: OK,
    expect: byLoader("/dev/vda1", ["virtio_blk"]),
  },
  "uefi demo": DEMO,

  // ---- no ESP: the DDI in memory ----
  "in memory": {
    // QEMU loads the kernel and the initrd (the init's archive, then the DDI's); no disk at all.
    drives: [],
    inMemory: PLAIN,
    cmdline: "roothash=HASH storage_init.timeout=3",
    expect: IN_MEMORY,
  },
  "network tftp": {
    // The firmware fetches the UKI, the DDI in its .initrd, from QEMU's TFTP server; no disk.
    uefi: { loader: "uki", ddis: [], partUuid: UEFI_ESP_PART_UUID, network: "tftp" },
    drives: [],
    inMemory: PLAIN,
    cmdline: "roothash=HASH storage_init.timeout=3",
    expect: IN_MEMORY,
  },
  "network http": {
    // The same by HTTP from a server on 127.0.0.1 the guest reaches through QEMU.
    uefi: { loader: "uki", ddis: [], partUuid: UEFI_ESP_PART_UUID, network: "http" },
    drives: [],
    inMemory: PLAIN,
    cmdline: "roothash=HASH storage_init.timeout=3",
    expect: IN_MEMORY,
  },
  "network wrong hash": {
    // A UKI whose command line pins another root: its DDI in memory is refused, and no ESP is there.
    uefi: { loader: "uki", ddis: [], partUuid: UEFI_ESP_PART_UUID, network: "tftp" },
    drives: [],
    inMemory: PLAIN,
    pin: { repart: { version: "1" } },
    cmdline: "roothash=HASH storage_init.timeout=3 storage_init.failure_delay=0 storage_init.on_failure=poweroff",
    expect: failed(
      /^storage-init: failed to find the ESP: .*; waited 3 s for the ESP( \(the ESP partition type\))?; the DDI in memory passed over$/,
      "poweroff",
      0,
    ),
  },
  // The same on Debian 13: its kernel, the init packed with its modules, its systemd in the root.
  "uefi demo trixie": { ...DEMO, debian: "trixie" },
  "uefi secure boot": SECURE_BOOT,
  "uefi secure boot tampered": SECURE_BOOT_TAMPERED,

  // ---- signed DDIs ----
  signed: SIGNED,
  "all refused": allRefused("x86-64"),
  "newest verifying": NEWEST_VERIFYING,
  floor: {
    uefi: shim([repart(`${AB}/root_2.raw`, "2", "mok"), repart(`${AB}/root_1.raw`, "1", "mok")]),
    drives: [UKI],
    cmdline: signedCmdline(
      `storage_init.ddi=${AB}/ storage_init.min_version=3 storage_init.on_failure=poweroff storage_init.failure_delay=0`,
    ),
    expect: failed(
      `storage-init: failed to open the DDI ${AB}/: none of the 2 DDIs is usable: ` +
        `/dev/vda1 ${AB}/root_2.raw: its version 2 is older than storage_init.min_version=3; ` +
        `/dev/vda1 ${AB}/root_1.raw: its version 1 is older than storage_init.min_version=3`,
      "poweroff",
      0,
      true,
    ),
  },
  "pinned signer": {
    uefi: shim([repart(`${AB}/root_2.raw`, "2", "dkms"), repart(`${AB}/root_1.raw`, "1", "mok")], ["mok", "dkms"]),
    drives: [UKI],
    cmdline: signedCmdline(`storage_init.ddi=${AB}/`),
    expect: byLoader(
      "/dev/vda1",
      [],
      ["api", "cmdline", "coldplug", "esp", "ddi", "verity", "ddi", "verity", "mount", "switch-root"],
    ),
  },
  stick: {
    // The machine's own disk (vdb, which systemd-boot was started from) holds version 2; a stick
    // (vda, sorting first) carries the ESP's PARTUUID and version 1, signed by the same key.
    uefi: shim([repart("/EFI/storage-init/root.raw", "2", "mok")]),
    drives: [{ disk: { esp: [repart("/EFI/storage-init/root.raw", "1", "mok")], partUuid: MOK_ESP_PART_UUID } }, UKI],
    cmdline: signedCmdline(),
    // Each ESP's plain path activated once to read its version; then the newest again, taken.
    expect: byLoader("/dev/vdb1", [], ["api", "cmdline", "coldplug", ...TRIED, ...TRIED, ...TRIED, "switch-root"]),
  },
  update: {
    // The booted system installs the DDI on vdb (version 2) as root_2.raw: the ESP's disk is
    // written by the first boot and read by the second.
    uefi: shim([repart(`${AB}/root_1.raw`, "1", "mok")], ["mok"], 32 << 20),
    drives: [{ ...UKI, writable: true }, { disk: { ddi: { repart: { version: "2", signWith: "mok" } } } }],
    cmdline: signedCmdline(
      `storage_init.ddi=${AB}/ storage_init_test.install_from=/dev/vdb storage_init_test.install_to=${AB}/root_2.raw`,
    ),
    expect: byLoader("/dev/vda1", []),
  },
  pinned: {
    uefi: shim([repart(`${AB}/root_1.raw`, "1", "mok"), repart(`${AB}/root_2.raw`, "2", "mok")]),
    drives: [UKI],
    cmdline: `storage_init.timeout=20 roothash=HASH storage_init.ddi=${AB}/`,
    expect: byLoader(
      "/dev/vda1",
      [],
      ["api", "cmdline", "coldplug", "esp", "ddi", "ddi", "verity", "mount", "switch-root"],
    ),
  },

  // ---- arm64: QEMU virt, the same init cross-built ----
  "arm64 virtio-mmio": plainOn("virtio-mmio", byType("/dev/vda1", ["virtio_mmio", "virtio_blk"]), "arm64"),
  "arm64 sd": plainOn("sd", byType("/dev/mmcblk0p1", ["sdhci", "sdhci_pci"]), "arm64"),
  "arm64 usb": plainOn("usb", byType("/dev/sd[a-z]1", ["xhci_pci", "usb_storage", "sd_mod"]), "arm64"),
  "arm64 nvme": plainOn("nvme", byType("/dev/nvme0n1p1", ["nvme_core", "nvme"]), "arm64"),
  "arm64 tampered": {
    arch: "arm64",
    drives: [{ disk: { variant: { flipErofsByte: 1030 } }, if: "virtio-mmio" }],
    cmdline: OK + " storage_init.failure_delay=1",
    expect: failed(TAMPERED, "reboot", 1),
  },
  "arm64 uefi": {
    arch: "arm64",
    uefi: { loader: "systemd-boot", ddis: [{ ddi: PLAIN }], partUuid: UEFI_ESP_PART_UUID },
    drives: [UKI],
    cmdline: OK,
    expect: byLoader("/dev/vda1", ["virtio_blk"]),
  },
  // The same Secure Boot and signed DDIs as on x86-64, under AAVMF with its snakeoil store and shim for arm64.
  "arm64 secure boot": { ...SECURE_BOOT, arch: "arm64" },
  "arm64 secure boot tampered": { ...SECURE_BOOT_TAMPERED, arch: "arm64" },
  "arm64 signed": { ...SIGNED, arch: "arm64" },
  "arm64 all refused": allRefused("arm64"),
  "arm64 newest verifying": { ...NEWEST_VERIFYING, arch: "arm64" },
  // The demo on arm64: Debian's arm64 systemd, its tree's second stage made in an arm64 VM.
  "arm64 demo": { ...DEMO, arch: "arm64", timeoutMs: 600000 },

  // ---- failures ----
  "wrong roothash": verdict("wrong roothash= (partition UUIDs do not match)", "storage_init.failure_delay=1", {
    action: "reboot",
    delayS: 1,
  }),
  "no roothash": verdict(
    "no roothash= at all refuses an unverified root",
    "storage_init.on_failure=poweroff storage_init.failure_delay=0",
    { action: "poweroff", delayS: 0 },
  ),
  tampered: verdict(
    "one flipped byte in the erofs superblock is stopped by dm-verity",
    "storage_init.timeout=20 storage_init.failure_delay=1",
    {
      action: "reboot",
      delayS: 1,
    },
  ),
  "init tampered": {
    // The superblock, the mount, the init's inode and os-release all verify: only the init's data
    // is bad, and only the kernel reads it, at execve, after the switch.
    drives: [{ disk: { variant: { flipInitByte: true } } }],
    cmdline: OK + " storage_init.failure_delay=1",
    expect: failed(
      'storage-init: failed to switch root: execve "/sbin/init": EIO: dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)',
      "reboot",
      1,
      true,
    ),
  },
  // Both refused once the verified root is mounted: the init's data is read at execve, after the
  // switch into the overlay; what the second stage holds is looked at once it is mounted.
  "second stage tampered": verdict(
    "a second stage whose init was changed after the root hash was taken is stopped by dm-verity",
    "storage_init.timeout=20 storage_init.on_failure=poweroff storage_init.failure_delay=0",
    { action: "poweroff", delayS: 0, mounted: true },
  ),
  "second stage without machine-id": verdict(
    "a second stage without /etc/machine-id is refused, naming it",
    "storage_init.timeout=20 storage_init.on_failure=poweroff storage_init.failure_delay=0",
    { action: "poweroff", delayS: 0, mounted: true },
  ),
  "verity short": verdict(
    "a verity superblock that verifies less than the erofs root holds is refused, root hash or not",
    "storage_init.timeout=20 storage_init.failure_delay=0",
    { action: "reboot", delayS: 0 },
  ),
  "no DDI": verdict(
    "the DDI is missing from the ESP",
    "storage_init.timeout=20 storage_init.on_failure=poweroff storage_init.failure_delay=0",
    { action: "poweroff", delayS: 0 },
  ),
  "no ESP": {
    drives: [{ disk: { variant: { noEsp: true } } }],
    cmdline: "roothash=HASH storage_init.timeout=3 storage_init.failure_delay=0",
    expect: failed(NO_ESP, "reboot", 0),
  },
  "no disk": {
    drives: [],
    pin: PLAIN,
    cmdline: "roothash=HASH storage_init.timeout=2 storage_init.failure_delay=0 storage_init.on_failure=poweroff",
    expect: failed(NO_DISK, "poweroff", 0),
  },
  "module missing": {
    // The same initramfs with virtio_blk.ko taken out (the table still names it).
    drives: [{ disk: PLAIN }],
    initramfsWithout: "modules/virtio_blk.ko",
    cmdline: "roothash=HASH storage_init.timeout=3 storage_init.failure_delay=0",
    expect: failed(
      `storage-init: failed to find the ESP: ${NO_MODULE}; waited 3 s for the ESP; no DDI in memory`,
      "reboot",
      0,
    ),
  },
  "no shell": { drives: [{ disk: { variant: { omitDdi: true } } }], cmdline: OK + " storage_init.on_failure=shell" },

  // ---- PID 1 never exits ----
  overcommit: {
    drives: [{ disk: PLAIN }],
    cmdline: OK + " sysctl.vm.overcommit_memory=2",
    expect: reached(/storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]),
  },
  "out of memory": {
    // 16 MiB of commit for the whole machine: enough to execute /init, not for porffor's heap.
    drives: [{ disk: PLAIN }],
    cmdline: OK + " sysctl.vm.overcommit_memory=2 sysctl.vm.overcommit_kbytes=16384",
    expect: failed(
      /^storage-init: failed to start the init: the runtime exited with status 1 \(out of memory, or an error it could not report: porffor's own message is on the console\)$/,
      "reboot",
      5,
    ),
  },

  // ---- a signature the kernel refuses, on a root roothash= pins ----
  // (storage_init.debug names the modalias each module was loaded for)
  "untrusted x86-64": untrusted("x86-64", "storage_init.debug loglevel=8", byType("/dev/vda1", [])),
  "untrusted signed x86-64": untrusted(
    "x86-64",
    "storage_init.root_policy=signed SIGNERS:other storage_init.on_failure=poweroff storage_init.failure_delay=0",
    enokey,
  ),
  "untrusted arm64": untrusted("arm64", "storage_init.debug loglevel=8", byType("/dev/vda1", [])),
  "untrusted signed arm64": untrusted(
    "arm64",
    "storage_init.root_policy=signed SIGNERS:other storage_init.on_failure=poweroff storage_init.failure_delay=0",
    enokey,
  ),
} satisfies Record<string, Scenario>;

if (it === test) test.before(() => prepare(SCENARIOS));

// ---- happy paths ----

it("boot: virtio-blk disk, ESP by type, DDI at the default path", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS.virtio);
  t.notRegex(r.output, /storage-init: loaded (nvme|virtio_scsi|usb_storage) /, "only what the hardware needs");
});

it("boot: NVMe disk loads nvme and finds nvme0n1p1", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS.nvme);
  t.notRegex(r.output, /storage-init: loaded virtio_blk /);
});

it("boot: virtio-scsi disk loads virtio_scsi and sd_mod", async (t) => {
  await bootScenario(t, SCENARIOS.scsi);
});

it("boot: SATA disk on the q35 AHCI controller loads ahci and sd_mod", async (t) => {
  await bootScenario(t, SCENARIOS.ahci);
});

it("boot: a DDI whose root is an initrd is a second stage: its verified erofs under a tmpfs overlay, writable as a cpio initrd", async (t) => {
  await bootScenario(t, SCENARIOS["second stage"]);
});

it("second stage: Debian's systemd in the DDI runs initrd.target, mounts the ext4 root= and switches into it", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["second stage debian"]);
  const { at, exec } = secondStageStarted(t, r, "second-stage-debian");
  const initrd = at(/systemd\[1\]: Running in initrd\./);
  at(/systemd\[1\]: Reached target initrd\.target/);
  const mounted = at(/EXT4-fs \(vdb\): mounted filesystem/);
  const switching = at(/systemd\[1\]: Switching root\./);
  const marker = at(/FINAL-ROOT-REACHED uptime=[\d.]+ root=\/dev\/vdb ext4/);
  t.true(exec < initrd && initrd < mounted && mounted < switching && switching < marker, "in that order");
  // Two systemd starts, the second stage's in an initrd, then the final root's.
  t.is(r.output.match(/systemd\[1\]: systemd \d+\S* running in system mode/g)?.length, 2);
  t.is(r.output.match(/systemd\[1\]: Running in initrd\./g)?.length, 1);
  // The initrd's start, as the final systemd has it, is storage-init's: handed to the second
  // stage with --deserialize and serialized on by it at its switch.
  const a = analyzeInitrd(r.output);
  t.regex(a.analyze.join("\n"), /^Startup finished in .*\(kernel\) \+ .*\(initrd\) \+ .*\(userspace\)/, r.output);
  const timings = r.output.match(/TIMINGS (\{.*\})/);
  const handed = r.output.match(/ANALYZE-INITRD-USEC (\d+) (\d+)/);
  t.truthy(timings && handed, r.output.slice(-6000));
  if (timings && handed) {
    const startMs = (JSON.parse(timings[1]) as { startMs: number }).startMs;
    t.true(Math.abs(Number(handed[1]) / 1000 - startMs) < 0.0015, `${handed[1]} µs vs startMs ${startMs}`);
  }
  // The second stage's verity device and its loop devices went once its systemd let the old root
  // go: storage-init marked them for deferred removal and autoclear.
  const blocks = r.output.match(/BLOCK-DEVICES (.*) LOOPS-BOUND (\d+)/);
  t.truthy(blocks, r.output.slice(-6000));
  if (blocks) {
    t.notRegex(blocks[1], /\bdm-\d/, "no device-mapper device is left");
    t.is(blocks[2], "0", "no loop device is bound");
  }
  t.regex(r.output, /reboot: Power down/);
  t.log(
    `second stage ${(switching - exec).toFixed(1)} s, FINAL-ROOT-REACHED at ${marker.toFixed(1)} s; ${a.analyze[0]}`,
  );
});

/**
 * The kernel's timestamp of the first line matching `re`, anywhere in a console line (systemd's
 * status output, redrawn with \r, may precede a kernel message on the same line); asserts there
 * is one.
 */
function stampOf(t: ExecutionContext, output: string, re: RegExp): number {
  const [at] = stampsOf(output, re);
  t.truthy(at !== undefined, `${re}:\n${output.slice(-6000)}`);
  return at ?? NaN;
}

/**
 * Keeps the console of a second stage's boot as .build/boot/<name>.console and asserts that
 * storage-init executed the second stage's systemd under its overlay. Returns stampOf() for this
 * boot and the time of that execve.
 */
function secondStageStarted(t: ExecutionContext, r: Boot, name: string): { at: (re: RegExp) => number; exec: number } {
  writeFileSync(join(WORK, "boot", `${name}.console`), r.output);
  noPanic(t, r);
  const at = (re: RegExp) => stampOf(t, r.output, re);
  at(/storage-init: second stage: \S+ under a tmpfs overlay on \/sysroot/);
  return { at, exec: at(/storage-init: starting \/usr\/lib\/systemd\/systemd after \d+\.\d+ ms/) };
}

/** systemd-cryptsetup's unit of the encrypted root (rd.luks.uuid=), as systemd escapes its name. */
const CRYPTSETUP_UNIT = `systemd-cryptsetup@${`luks-${LUKS_UUID}`.replace(/-/g, "\\x2d")}.service`;

it("second stage: with the TPM, the UKI's signed PCR 11 policy unlocks LUKS2, LVM activates, the ext4 root on it boots to multi-user", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["second stage tpm"]);
  const { at, exec } = secondStageStarted(t, r, "second-stage-tpm");
  // PCR 11 holds the stub's measurements and then enter-initrd: storage-init extended nothing,
  // or the signed policy would not match.
  const entered = at(/systemd-pcrphase\[\d+\]: Successfully extended PCR index 11 with 'enter-initrd'/);
  const unlocked = at(new RegExp(`systemd\\[1\\]: Finished ${literally(CRYPTSETUP_UNIT).source}`));
  const activated = at(/systemd\[1\]: Started lvm-activate-debian-vg\.service/);
  const mounted = at(/EXT4-fs \(dm-\d+\): mounted filesystem/);
  const left = at(/systemd-pcrphase\[\d+\]: Successfully extended PCR index 11 with 'leave-initrd'/);
  const marker = at(/FINAL-ROOT-REACHED uptime=[\d.]+ root=\/dev\/mapper\/debian--vg-root ext4/);
  t.true(
    exec < entered && entered < unlocked && unlocked < mounted && mounted < left && left < marker,
    "in that order",
  );
  t.true(activated < mounted, "the volume group was activated before its root was mounted");
  t.notRegex(r.output, /Password querying disabled|Please enter passphrase|falling back to traditional unlocking/);
  t.false(r.output.includes(LUKS_PASSPHRASE), "the passphrase is nowhere on the console");
  // Nothing of the first stage is left: storage-init's verity device (the first device-mapper
  // device) and its loop devices; the crypt and LVM devices are the booted system's.
  const blocks = r.output.match(/BLOCK-DEVICES (.*) LOOPS-BOUND (\d+)/);
  t.truthy(blocks, r.output.slice(-6000));
  if (blocks) {
    t.notRegex(blocks[1], /\bdm-0\b/, "storage-init's verity device is gone");
    t.regex(blocks[1], /\bdm-1 dm-2\b/, "the crypt device and the root volume stay");
    t.is(blocks[2], "0", "no loop device is bound");
  }
  t.regex(
    analyzeInitrd(r.output).analyze.join("\n"),
    /^Startup finished in .*\(kernel\) \+ .*\(initrd\) \+ .*\(userspace\)/m,
  );
  t.regex(r.output, /reboot: Power down/);
  t.log(`unlocked at ${unlocked.toFixed(1)} s, FINAL-ROOT-REACHED at ${marker.toFixed(1)} s`);
});

it("second stage: under a UKI whose command line changed after its PCR 11 policy was signed, the TPM unseals nothing and no passphrase is asked", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["second stage tpm changed cmdline"]);
  t.false(r.timedOut, r.output.slice(-6000));
  t.regex(r.output, /Kernel command line: .* systemd\.debug_shell/);
  stampOf(t, r.output, /systemd-pcrphase\[\d+\]: Successfully extended PCR index 11 with 'enter-initrd'/);
  // No signature in .pcrsig is for the PCR 11 this command line left: the TPM2 token is passed
  // over, and headless forbids the passphrase.
  stampOf(
    t,
    r.output,
    /systemd-cryptsetup\[\d+\]: Couldn't find signature for this PCR bank, PCR index and public key\./,
  );
  stampOf(t, r.output, /systemd-cryptsetup\[\d+\]: Password querying disabled via 'headless' option\./);
  stampOf(t, r.output, new RegExp(`systemd\\[1\\]: Failed to start ${literally(CRYPTSETUP_UNIT).source}`));
  t.notRegex(r.output, new RegExp(`Finished ${literally(CRYPTSETUP_UNIT).source}`));
  t.notRegex(r.output, /EXT4-fs \(dm-\d+\): mounted|FINAL-ROOT-REACHED/);
  t.false(r.output.includes(LUKS_PASSPHRASE), "the passphrase is nowhere on the console");
});

it("second stage: one whose init was changed is refused by dm-verity at its execve: its line, then the action", async (t) => {
  await bootScenario(t, SCENARIOS["second stage tampered"]);
});

it("second stage: one without /etc/machine-id is refused with a line naming it", async (t) => {
  await bootScenario(t, SCENARIOS["second stage without machine-id"]);
});

it("boot: a DDI at another path given by storage_init.ddi=", async (t) => {
  await bootScenario(t, SCENARIOS["ddi path"]);
});

it("boot: storage_init.esp=PARTUUID= matching a cloned disk too: the ESP whose DDI roothash= pins is taken", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["cloned ESP"]);
  t.regex(
    r.output,
    /storage-init: passed over \/dev\/vda1: root partition UUID [0-9a-f-]{36} does not match roothash= /,
  );
});

it("boot: a corrupted primary GPT header is replaced by the backup and the boot succeeds", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["backup GPT"]);
  t.regex(
    r.output,
    /storage-init: \/dev\/vda: primary GPT is damaged \(no "EFI PART" signature at LBA 1 \(512- or 4096-byte sectors\)\); using the backup/,
  );
  t.is(r.output.split("primary GPT is damaged").length, 2, "said once");
});

it("boot: a disk that appears late is waited for", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["late disk"]);
  t.is(r.plugged, 1);
  const lines = stampedLines(r.output);
  const start = lines.find((l) => /Run \/init/.test(l.text));
  const esp = lines.find((l) => /storage-init: ESP /.test(l.text));
  t.true(!!start && !!esp && esp.t - start.t > 2.5, "the ESP was found only after the hot-plug");
});

it("boot: a sha512 DDI (a 128-digit roothash=) loads the kernel's sha512 module and reaches the root", async (t) => {
  const { r, ddis } = await bootScenario(t, SCENARIOS.sha512);
  t.is(ddis[0].rootHash.length, 128);
  t.regex(r.output, /storage-init: loaded sha512_generic /);
  t.regex(r.output, /storage-init: dm-verity \/dev\/dm-0 \(sha512, \d+ blocks of 4096\)/);
  t.regex(r.output, /ROOT-REACHED/);
  noPanic(t, r);
});

it("boot: a sha1 DDI boots only with storage_init.allow_weak_hash", async (t) => {
  const { r, ddis } = await bootScenario(t, SCENARIOS.sha1);
  t.is(ddis[0].rootHash.length, 40);
  t.regex(r.output, /storage-init: dm-verity \/dev\/dm-0 \(sha1, \d+ blocks of 4096\)/);
  t.regex(r.output, /ROOT-REACHED/);
  noPanic(t, r);
});

it("boot: 128 SCSI LUNs appearing while the init waits, the ESP's disk the last, are taken in stride", async (t) => {
  // The uevent socket may overflow (ENOBUFS), which only means another rescan of sysfs.
  const { r } = await bootScenario(t, SCENARIOS["128 LUNs"]);
  const attached = r.output.split("Attached SCSI disk").length - 1;
  t.true(attached > 100, `${attached} SCSI disks attached`);
});

// ---- UEFI: OVMF, systemd-boot, the UKI ----

it("uefi: OVMF -> systemd-boot -> the UKI; a decoy ESP on the first disk: LoaderDevicePartUUID leads to the DDI", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["uefi systemd-boot"]);
  t.notRegex(r.output, /\/dev\/vda1/, "the decoy ESP was never looked at");
  t.regex(r.output, /Kernel command line: console=ttyS0 panic=-1 roothash=[0-9a-f]{64} storage_init\.timeout=20/);
});

it("uefi: the UKI started by the firmware itself (systemd-stub sets LoaderDevicePartUUID)", async (t) => {
  await bootScenario(t, SCENARIOS["uefi direct"]);
});

// ---- no ESP: the DDI in memory ----

/** The marker's MEMINFO line: MemTotal, MemAvailable, Shmem (kB). */
function meminfo(t: ExecutionContext, output: string): Record<string, number> {
  const m = /MEMINFO (.*)/.exec(output);
  t.truthy(m, "the root said what memory is in use");
  return Object.fromEntries((m?.[1] ?? "").split(" ").map((w) => [w.split("=")[0], Number(w.split("=")[1])]));
}

it("in memory: the DDI in the initrd boots with no disk at all: no storage driver, the DDI's size more in shared memory than from an ESP", async (t) => {
  const { r, ddis } = await bootScenario(t, SCENARIOS["in memory"]);
  // q35's AHCI controller is there: coldplug would have loaded ahci had it looked for an ESP.
  t.notRegex(r.output, /storage-init: loaded (ahci|virtio_blk|vfat)/, "nothing of the ESP was loaded");
  const mem = meminfo(t, r.output);
  // The same DDI on an ESP, the same kernel and memory: what carrying it in memory costs.
  const esp = meminfo(t, (await bootScenario(t, SCENARIOS.virtio)).r.output);
  const ddiKiB = statSync(ddis[0].ddi).size / 1024;
  const used = (m: Record<string, number>) => m.MemTotal - m.MemAvailable;
  // tmpfs holds the DDI from memory (the rest of the initramfs was freed at the switch), not the ESP's.
  t.true(mem.Shmem >= ddiKiB, `Shmem ${mem.Shmem} kB holds the DDI's ${ddiKiB} KiB`);
  t.true(esp.Shmem < ddiKiB / 4, `Shmem ${esp.Shmem} kB from the ESP`);
  t.log(
    `at the root's start: in use (MemTotal - MemAvailable) ${used(mem)} kB of ${mem.MemTotal} kB from memory, ` +
      `${used(esp)} kB of ${esp.MemTotal} kB from the ESP; Shmem ${mem.Shmem} kB against ${esp.Shmem} kB; the DDI ${ddiKiB} KiB`,
  );
});

/** How long the firmware took from the line `from` to starting what it fetched, in ms of the host's clock, and the UKI's size. */
function fetched(t: ExecutionContext, r: Boot, from: RegExp, uki: string): void {
  const lines = r.output.split("\n");
  const start = lines.findIndex((l) => from.test(l));
  const started = lines.findIndex((l, i) => i > start && /BdsDxe: starting Boot/.test(l));
  t.true(start >= 0 && started > start, "the firmware started what it fetched");
  t.log(
    `UKI ${(statSync(uki).size / 1048576).toFixed(1)} MiB fetched and started in ${((r.lineMs[started] - r.lineMs[start]) / 1000).toFixed(1)} s under TCG`,
  );
}

it("network: OVMF fetches the UKI by TFTP from QEMU (restrict=on), and its DDI in memory boots", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["network tftp"]);
  t.regex(r.output, /NBP filename is storage-init\.efi/);
  fetched(t, r, /Start PXE over IPv4/, join(WORK, "boot", "network-tftp", "storage-init.efi"));
});

it("network: OVMF fetches the UKI by HTTP from a server on 127.0.0.1, and its DDI in memory boots", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["network http"]);
  t.regex(r.output, /URI: http:\/\/10\.0\.2\.100\/storage-init\.efi/);
  fetched(t, r, /Start HTTP Boot over IPv4/, join(WORK, "boot", "network-http", "storage-init.efi"));
});

it("network: a UKI pinning another root refuses its DDI in memory and, with no ESP, ends in one line naming both", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["network wrong hash"]);
  t.regex(r.output, /storage-init: passed over the initramfs \/ddi\/root\.raw: /);
});

/** The names in `dir` on the ESP (the first partition, at 1 MiB) of the disk image `disk` (mtools). */
function espNames(disk: string, dir: string): string[] {
  const out = execFileSync("mdir", ["-b", "-i", `${disk}@@1048576`, `::${dir}`], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.slice(l.lastIndexOf("/") + 1))
    .sort();
}

/**
 * The demo booted: boot counting on the ESP, and the root's systemd reporting storage-init's
 * start as its initrd's. Returns the console.
 */
async function bootsTheDemo(t: ExecutionContext, scenario: Scenario): Promise<string> {
  const { r, files } = await bootScenario(t, scenario);
  noPanic(t, r);
  // Boot counting, as the README installs it: one try counted early, the counter dropped once
  // boot-complete.target was reached; the ESP says so after the machine is off.
  const dir = "/EFI/storage-init/root.v";
  t.regex(r.output, new RegExp(`storage-init-bless: count: ${dir}/root_1\\+3\\.raw -> ${dir}/root_1\\+2-1\\.raw`));
  t.regex(r.output, new RegExp(`storage-init-bless: good: ${dir}/root_1\\+2-1\\.raw -> ${dir}/root_1\\.raw`));
  t.deepEqual(espNames(files[0], dir), ["root_1.raw"]);
  t.regex(r.output, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/);
  t.regex(r.output, /storage-init: starting \/usr\/lib\/systemd\/systemd after \d+\.\d+ ms/);
  t.regex(r.output, /ROOT-REACHED uptime=[\d.]+ init=\/usr\/lib\/systemd\/systemd/);
  const a = analyzeInitrd(r.output);
  t.regex(a.analyze.join("\n"), /^Startup finished in .*\(kernel\) \+ .*\(initrd\) \+ .*\(userspace\)/, r.output);
  // systemd's initrd timestamp is the one storage-init handed over: its own start, to the µs.
  const timings = r.output.match(/TIMINGS (\{.*\})/);
  const handed = r.output.match(/ANALYZE-INITRD-USEC (\d+) (\d+)/);
  t.truthy(timings && handed, r.output.slice(-4000));
  if (!timings || !handed) return r.output;
  const startMs = (JSON.parse(timings[1]) as { startMs: number }).startMs;
  const initrdUs = Number(handed[1]);
  // (timings.json rounds to the µs, the serialization truncates: one µs apart at most)
  t.true(Math.abs(initrdUs / 1000 - startMs) < 0.0015, `${initrdUs} µs vs startMs ${startMs}`);
  // Its "(initrd)" runs from there to its own start: storage-init's time plus the execve of systemd.
  const { systemdMs, oursMs } = a;
  t.true(systemdMs !== undefined && oursMs !== undefined, r.output.slice(-4000));
  if (systemdMs === undefined || oursMs === undefined) return r.output;
  t.true(systemdMs > oursMs, `systemd ${systemdMs} ms, ours ${oursMs} ms`);
  t.true(systemdMs < oursMs + 5000, `systemd ${systemdMs} ms, ours ${oursMs} ms`);
  return r.output;
}

it("uefi: the demo: systemd-boot, the UKI, storage-init, then Debian's systemd, which reports storage-init's start as its initrd's", async (t) => {
  const output = await bootsTheDemo(t, SCENARIOS["uefi demo"]);
  t.regex(output, /Linux version 6\.1\./);
});

it("uefi: the demo on Debian 13: its 6.12 kernel with the modules decompressed at build time, and systemd 257 in the root", async (t) => {
  const output = await bootsTheDemo(t, SCENARIOS["uefi demo trixie"]);
  t.regex(output, /Linux version 6\.12\./);
  t.regex(output, /systemd\[1\]: systemd 257/);
});

/** Secure Boot enforced: the signed loader and UKI boot, the kernel sees Secure Boot on and locks down. */
async function secureBootBoots(t: ExecutionContext, scenario: Scenario): Promise<void> {
  const { r } = await bootScenario(t, scenario);
  t.regex(r.output, /secureboot: Secure boot enabled/);
  t.regex(r.output, /Kernel is locked down from EFI Secure Boot/);
}

/** The firmware refuses the UKI changed after signing: no kernel runs. */
async function tamperedUkiRefused(t: ExecutionContext, scenario: Scenario): Promise<void> {
  const { r } = await bootScenario(t, scenario);
  t.false(r.timedOut, "the firmware gave up:\n" + r.output);
  // "Access Denied" from systemd-boot 252 (x86-64), "Access denied" from 257 (arm64).
  t.regex(r.output, /Error loading \\EFI\\Linux\\storage-init\.efi: Access denied/i);
  t.notRegex(r.output, /Linux version|storage-init:/, "no kernel ran");
}

it("uefi: Secure Boot enforced: the signed systemd-boot and UKI boot", async (t) => {
  await secureBootBoots(t, SCENARIOS["uefi secure boot"]);
});

it("uefi: Secure Boot refuses a UKI whose command line (roothash=) was changed after signing", async (t) => {
  await tamperedUkiRefused(t, SCENARIOS["uefi secure boot tampered"]);
});

// ---- signed DDIs: the kernel checks the signature against the MOK shim enrolled ----

/** The line of a DDI the kernel accepted, naming its signature. */
function accepted(d: Ddi): RegExp {
  return new RegExp(
    `storage-init: dm-verity /dev/dm-0 \\(sha256, \\d+ blocks of \\d+\\) over /dev/loop\\d \\+ /dev/loop\\d; the kernel accepted the signature of root hash ${d.rootHash} \\(certificate SHA-256 ${d.fingerprint}\\)`,
  );
}

/** The signed DDI boots without roothash=: shim handed the MOK to the kernel, which accepted the signature. */
async function signedBoots(t: ExecutionContext, scenario: Scenario): Promise<void> {
  const { r, ddis } = await bootScenario(t, scenario);
  t.regex(r.output, /secureboot: Secure boot enabled/);
  t.regex(
    r.output,
    /integrity: Loaded X\.509 cert 'storage-init test key mok: [0-9a-f]+'/,
    "shim handed the MOK to the kernel",
  );
  t.regex(r.output, accepted(ddis[0]));
}

/** Each of three DDIs refused with its own line (the scenario's fatal line), nothing activated. */
async function allRefusedLines(t: ExecutionContext, scenario: Scenario): Promise<void> {
  const { r } = await bootScenario(t, scenario);
  t.notRegex(r.output, /storage-init: dm-verity \/dev\/dm-0/, "nothing was activated");
  t.notRegex(r.output, /storage-init: mounted/);
}

/** The A/B directory falls back past a renamed old DDI and a corrupted newer one to the newest that verifies. */
async function newestVerifyingBoots(t: ExecutionContext, scenario: Scenario): Promise<void> {
  const { r, ddis } = await bootScenario(t, scenario);
  t.regex(
    r.output,
    new RegExp(
      `storage-init: ${AB}/: 4 candidates, newest first: ${AB}/root_4.raw, ${AB}/root_3.raw, ${AB}/root_2.raw, ${AB}/root_1.raw`,
    ),
  );
  t.regex(
    r.output,
    new RegExp(
      `storage-init: passed over /dev/vda1 ${AB}/root_4.raw: its name says version 4, the image says IMAGE_VERSION=1\r?\n`,
    ),
  );
  t.regex(
    r.output,
    new RegExp(
      `storage-init: passed over /dev/vda1 ${AB}/root_3.raw: the kernel refused the signature of root hash ${ddis[1].rootHash} .*: EINVAL`,
    ),
  );
  t.regex(r.output, accepted(ddis[2]));
  t.regex(
    r.output,
    new RegExp(`storage-init: root from ${AB}/root_2.raw on /dev/vda1 \\(version 2\\) after 2 passed over`),
  );
}

it("signed: without roothash=, the root hash from the DDI's signature, which the kernel checks against the enrolled MOK", async (t) => {
  await signedBoots(t, SCENARIOS.signed);
});

it("signed: an untrusted key, a corrupted signature and no signature are each refused with their own line, never activated", async (t) => {
  await allRefusedLines(t, SCENARIOS["all refused"]);
});

it("signed: an A/B directory boots the newest version whose signature verifies and whose image says its name's version", async (t) => {
  await newestVerifyingBoots(t, SCENARIOS["newest verifying"]);
});

it("signed: storage_init.min_version= above every DDI ends in one line naming the floor, nothing left mounted", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS.floor);
  // Each was verified and mounted to read its version, then released: the second reused the name.
  t.is(r.output.match(/storage-init: dm-verity \/dev\/dm-\d+ /g)?.length, 2, r.output);
});

it("signed: a newer DDI signed by another enrolled MOK (the kernel trusts it) is refused under a pinned signer", async (t) => {
  const { r, ddis } = await bootScenario(t, SCENARIOS["pinned signer"]);
  t.regex(r.output, /integrity: Loaded X\.509 cert 'storage-init test key dkms: [0-9a-f]+'/, "both keys enrolled");
  t.regex(
    r.output,
    new RegExp(
      `storage-init: passed over /dev/vda1 ${AB}/root_2.raw: the signature of root hash ${ddis[0].rootHash} \\(certificate SHA-256 ${ddis[0].fingerprint}\\) is not taken: it was made by certificate SHA-256 ${ddis[0].fingerprint}, which storage_init.certificate_fingerprint= does not name`,
    ),
  );
  t.regex(r.output, accepted(ddis[1]));
});

it("signed: a stick with the ESP's PARTUUID and an older signed DDI, sorting first, does not win", async (t) => {
  const { r, ddis } = await bootScenario(t, SCENARIOS.stick);
  t.regex(
    r.output,
    /storage-init: 2 partitions match the ESP's selector \(\/dev\/vda1, \/dev\/vdb1\): the newest image version among them is taken/,
  );
  t.regex(r.output, /storage-init: root from \/EFI\/storage-init\/root\.raw on \/dev\/vdb1 \(version 2\)/);
  t.regex(r.output, accepted(ddis[1]));
});

it("signed: the booted system installs the next DDI on the ESP it booted from, and the next boot takes it", async (t) => {
  const first = (await bootScenario(t, SCENARIOS.update)).r;
  t.regex(first.output, new RegExp(`storage-init: root from ${AB}/root_1.raw on /dev/vda1 \\(version 1\\)`));
  t.regex(first.output, new RegExp(`INSTALLED \\d+ bytes from /dev/vdb to ${AB}/root_2.raw`), first.output);
  const { r: second, ddis } = await bootScenario(t, SCENARIOS.update);
  const next = ddis[1];
  t.regex(second.output, new RegExp(`storage-init: root from ${AB}/root_2.raw on /dev/vda1 \\(version 2\\)`));
  t.regex(second.output, accepted(next));
  const json = second.output.match(/ROOT-JSON (\{.*\})/);
  t.truthy(json, second.output);
  if (!json) return;
  const chosen = JSON.parse(json[1]) as { path: string; imageVersion: string; signer: string };
  t.like(chosen, { path: `${AB}/root_2.raw`, imageVersion: "2", signer: next.fingerprint });
  t.regex(second.output, new RegExp(`INSTALLED already ${AB}/root_2.raw`));
});

it("signed: an A/B directory with roothash= boots the version it pins, its signature checked as well", async (t) => {
  const { r, ddis } = await bootScenario(t, SCENARIOS.pinned);
  t.regex(
    r.output,
    new RegExp(`storage-init: passed over /dev/vda1 ${AB}/root_2.raw: root partition UUID .* does not match roothash=`),
  );
  t.regex(r.output, accepted(ddis[0]));
  t.regex(
    r.output,
    new RegExp(`storage-init: root from ${AB}/root_1.raw on /dev/vda1 \\(version 1\\) after 1 passed over`),
  );
  t.notRegex(r.output, /require_signatures/, "roothash= pins; the kernel is not told to require signatures");
});

// ---- arm64: QEMU virt, the same init cross-built ----

itArm("arm64: virtio over MMIO (device tree, platform bus): virtio_mmio loads by its of: modalias", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["arm64 virtio-mmio"]);
  t.notRegex(r.output, /storage-init: loaded virtio_pci /, "no PCI virtio device on this machine");
});

itArm("arm64: an SD card behind sdhci", async (t) => {
  await bootScenario(t, SCENARIOS["arm64 sd"]);
});

itArm("arm64: a USB stick behind xhci", async (t) => {
  await bootScenario(t, SCENARIOS["arm64 usb"]);
});

itArm("arm64: an NVMe disk on virt's PCIe loads nvme", async (t) => {
  await bootScenario(t, SCENARIOS["arm64 nvme"]);
});

itArm("arm64: a tampered DDI is refused with the same line as on x86-64", async (t) => {
  await bootScenario(t, SCENARIOS["arm64 tampered"]);
});

itArm("arm64: UEFI: AAVMF -> systemd-boot -> the arm64 UKI (linuxaa64.efi.stub)", async (t) => {
  await bootScenario(t, SCENARIOS["arm64 uefi"]);
});

itArm(
  "arm64: Secure Boot enforced under AAVMF (snakeoil store): the signed systemd-boot and arm64 UKI boot",
  async (t) => {
    await secureBootBoots(t, SCENARIOS["arm64 secure boot"]);
  },
);

itArm("arm64: Secure Boot refuses a UKI whose command line (roothash=) was changed after signing", async (t) => {
  await tamperedUkiRefused(t, SCENARIOS["arm64 secure boot tampered"]);
});

itArm(
  "arm64: signed: without roothash=, the DDI's signature checked by the kernel against the MOK shim enrolled",
  async (t) => {
    await signedBoots(t, SCENARIOS["arm64 signed"]);
  },
);

itArm(
  "arm64: signed: an untrusted key, a corrupted signature and no signature are each refused with their own line",
  async (t) => {
    await allRefusedLines(t, SCENARIOS["arm64 all refused"]);
  },
);

itArm(
  "arm64: the demo: AAVMF, systemd-boot, the UKI, storage-init, then Debian's arm64 systemd to multi-user",
  async (t) => {
    const output = await bootsTheDemo(t, SCENARIOS["arm64 demo"]);
    t.regex(output, /Linux version \S+-arm64 /);
  },
);

itArm("arm64: signed: an A/B directory falls back to the newest version whose signature verifies", async (t) => {
  await newestVerifyingBoots(t, SCENARIOS["arm64 newest verifying"]);
});

// ---- failures ----

it("boot fails: wrong roothash= (partition UUIDs do not match)", async (t) => {
  await bootScenario(t, SCENARIOS["wrong roothash"]);
});

it("boot fails: no roothash= at all refuses an unverified root", async (t) => {
  await bootScenario(t, SCENARIOS["no roothash"]);
});

it("boot fails: one flipped byte in the erofs superblock is stopped by dm-verity", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS.tampered);
  t.regex(r.output, /device-mapper: verity: \d+:\d+: data block \d+ is corrupted/);
});

it("boot fails: a byte of the root's init changed after the root hash was taken: the EIO when the kernel executes it is reported as tampering", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["init tampered"]);
  t.regex(r.output, /storage-init: mounted \/dev\/dm-0 \(erofs\) on \/sysroot/);
  t.regex(r.output, /device-mapper: verity: \d+:\d+: data block \d+ is corrupted/);
});

it("boot fails: a verity superblock that verifies less than the erofs root holds is refused, root hash or not", async (t) => {
  await bootScenario(t, SCENARIOS["verity short"]);
});

it("boot fails: the DDI is missing from the ESP", async (t) => {
  await bootScenario(t, SCENARIOS["no DDI"]);
});

/**
 * The storage-init lines of a boot that timed out waiting for the ESP, from the first of the
 * details before the fatal line to the fatal line, which must be at most 200 characters.
 */
function timeoutLines(t: ExecutionContext, r: Boot, details: number): string[] {
  const ours = stampedLines(r.output)
    .map((l) => l.text)
    .filter((l) => l.startsWith("storage-init: "));
  const at = ours.findIndex((l) => l.startsWith("storage-init: failed to "));
  t.true(at >= details, r.output);
  t.true(ours[at].length <= 200, `${ours[at].length} characters: ${ours[at]}`);
  return ours.slice(at - details, at + 1);
}

/** The detail lines every ESP timeout ends with: modules loaded, block devices, modaliases seen. */
function lastDetails(t: ExecutionContext, got: string[], loaded: RegExp, blocks: string): void {
  t.regex(got[got.length - 4], loaded);
  t.is(got[got.length - 3], "storage-init: block devices: " + blocks);
  t.regex(
    got[got.length - 2],
    /^storage-init: \d+ modaliases seen; \d+ of devices no storage driver serves not listed$/,
  );
}

it("boot fails: no ESP on the disk times out, the cause first in a short fatal line, the details before it", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["no ESP"]);
  // q35's bridges, display, timers, serial port and keyboard are not storage: none is listed.
  const got = timeoutLines(t, r, 3);
  lastDetails(
    t,
    got,
    /^storage-init: modules loaded: scsi_common, scsi_mod, libata, libahci, ahci, virtio_pci_legacy_dev, virtio_pci_modern_dev, virtio_ring, virtio, virtio_pci, virtio_blk$/,
    "vda, vda1",
  );
  t.is(got[3], NO_ESP);
  t.notRegex(r.output, /no module for/);
});

it("boot fails: a disk that never appears times out (q35's AHCI controller is real hardware: ahci loads)", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["no disk"]);
  const got = timeoutLines(t, r, 3);
  lastDetails(t, got, /^storage-init: modules loaded: scsi_common, scsi_mod, libata, libahci, ahci$/, "none");
  t.is(got[3], NO_DISK);
});

it("boot fails: a required module missing from the initramfs is the cause the fatal line gives first", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["module missing"]);
  const got = timeoutLines(t, r, 4);
  t.is(got[0], "storage-init: module failed: " + NO_MODULE);
  lastDetails(t, got, /^storage-init: modules loaded: .*, virtio_pci$/, "none");
  t.is(got[4], `storage-init: failed to find the ESP: ${NO_MODULE}; waited 3 s for the ESP; no DDI in memory`);
});

it("boot fails: on_failure=shell without a shell says so and reboots", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["no shell"]);
  noPanic(t, r);
  t.regex(
    r.output,
    /storage-init: on_failure=shell: no shell in the initramfs \(tried \/bin\/sh, \/usr\/bin\/sh, \/bin\/busybox\); rebooting instead/,
  );
  t.regex(r.output, /reboot: Restarting system/);
});

// ---- PID 1 never exits ----

it("boot: strict overcommit (vm.overcommit_memory=2) reaches the root", async (t) => {
  await bootScenario(t, SCENARIOS.overcommit);
});

it("boot fails: the runtime out of memory at start ends in the fatal line and the action, not a panic", async (t) => {
  const { r } = await bootScenario(t, SCENARIOS["out of memory"]);
  t.regex(r.output, /porffor: (failed to reserve gc metadata|out of memory)/);
});

// ---- a signature the kernel refuses, on a root roothash= pins ----

for (const arch of ["x86-64", "arm64"] as const) {
  const itA = arch === "arm64" ? itArm : it;
  itA(
    `${arch}: a DDI signed by a key the kernel does not trust boots pinned by roothash=: the signature tried first, then one warning`,
    async (t) => {
      const { r, ddis } = await bootScenario(t, SCENARIOS[`untrusted ${arch}`]);
      const ddi = ddis[0];
      const texts = stampedLines(r.output).map((l) => l.text);
      t.deepEqual(
        texts.filter((l) => l.includes("refused the signature")),
        [
          `storage-init: the kernel refused the signature of root hash ${ddi.rootHash} (certificate SHA-256 ${ddi.fingerprint}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it; roothash= pins the root: activating it without the signature`,
        ],
      );
      // What was loaded: the table naming the signature, refused; then the pinned hash alone.
      const tables = texts.filter((l) => l.startsWith("storage-init: verity table: "));
      t.is(tables.length, 2, tables.join("\n"));
      t.regex(
        tables[0],
        new RegExp(` sha256 ${ddi.rootHash} [0-9a-f]+ 2 root_hash_sig_key_desc storage-init:root-verity:[0-9a-f]{32}$`),
      );
      t.regex(tables[1], new RegExp(` sha256 ${ddi.rootHash} [0-9a-f]+$`));
      t.notRegex(r.output, /the kernel accepted the signature/);
      t.notRegex(r.output, /loaded dm_verity require_signatures=1/);
    },
  );

  itA(
    `${arch}: the same DDI pinned by roothash= with storage_init.root_policy=signed is refused (ENOKEY), nothing activated`,
    async (t) => {
      const { r } = await bootScenario(t, SCENARIOS[`untrusted signed ${arch}`]);
      t.regex(r.output, /storage-init: loaded dm_verity require_signatures=1 \(/);
      t.notRegex(r.output, /storage-init: dm-verity \/dev\/dm-0|without the signature|storage-init: mounted /);
    },
  );
}
