/**
 * The architectures the init is built for, one row each: what the build, the images and the
 * QEMU tests need to know of an architecture, and nothing else does. (The partition types the
 * init looks for at boot are the init's own table: runtime/ddi.ts ARCH_TYPES.) The build
 * machine is x86-64; arm64 is cross-built, its Debian packages fetched as a foreign
 * architecture.
 */

export type Arch = "x86-64" | "arm64";

/** A file the build or a boot needs, and the Debian package that has it. */
export interface PackagedFile {
  file: string;
  package: string;
}

export interface ArchFacts {
  /** Debian's name of the architecture. */
  debian: string;
  /** Foreign on the build machine: its packages are named `<name>:<debian>`, after `dpkg --add-architecture`. */
  foreign: boolean;
  /** What this architecture's files in dist/ add to their names (distName()). */
  distSuffix: string;
  /** The C compiler driver and its arguments, the strip of its binutils, and the libc it links. */
  cc: string;
  ccArgs: string[];
  strip: string;
  libc?: PackagedFile;
  /** How a binary of this architecture runs on the build machine (qemu-user for a foreign one). */
  runner: string[];
  /** Debian's kernel metapackage, and the environment variable that names another kernel package. */
  kernel: { metapackage: string; env: string };
  /** What this architecture's boards add to each storage class (toolchain/module_closure.ts). */
  storageClasses: Record<string, string[]>;
  /** UEFI: see UefiFacts. */
  uefi: UefiFacts;
  /**
   * QEMU: the program and its package, the machine, the serial console's name in the guest, and
   * the TPM device a software TPM (swtpm) attaches as, or why there is none.
   */
  qemu: {
    binary: string;
    package: string;
    machine: string;
    console: string;
    tpm: { device: string } | { none: string };
  };
}

export interface UefiFacts {
  /** The short name in UEFI file names: linux<efi>.efi.stub, systemd-boot<efi>.efi, \EFI\BOOT\BOOT<EFI>.EFI. */
  efi: string;
  /**
   * The Debian release whose systemd-boot-efi (systemd-boot, systemd-stub) a foreign
   * architecture's boots use (toolchain/debian.mjs DEBIAN_RELEASES).
   */
  bootRelease?: string;
  /** The PE machine of its EFI binaries, and the objcopy that writes that PE flavour. */
  peMachine: number;
  objcopy: string;
  /** The firmware's code and variable store (pflash images for QEMU), with their package. */
  firmware: { code: string; vars: string; package: string };
  /**
   * The Secure Boot build of the firmware and a variable store whose PK, KEK and db hold a test
   * certificate, with that certificate and its key (encrypted with `passphrase`); the QEMU
   * machine it runs on, and what else QEMU is given for it.
   */
  secureBoot?: {
    code: string;
    vars: string;
    key: string;
    cert: string;
    passphrase: string;
    package: string;
    machine: string;
    qemuArgs: string[];
  };
  /**
   * shim, unsigned (signed with the test key when Secure Boot is on): installed for the build
   * machine's architecture, `file` in the package fetched for a foreign one.
   */
  shim?: PackagedFile;
}

export const ARCHES: Record<Arch, ArchFacts> = {
  "x86-64": {
    debian: "amd64",
    foreign: false,
    distSuffix: "",
    cc: "musl-gcc",
    ccArgs: [],
    strip: "strip",
    runner: [],
    kernel: { metapackage: "linux-image-amd64", env: "STORAGE_INIT_KERNEL_PACKAGE" },
    storageClasses: {},
    uefi: {
      efi: "x64",
      peMachine: 0x8664,
      objcopy: "objcopy",
      firmware: { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd", package: "ovmf" },
      // Debian's test-only "snakeoil" certificate, its key shipped beside it.
      secureBoot: {
        code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        vars: "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd",
        key: "/usr/share/ovmf/PkKek-1-snakeoil.key",
        cert: "/usr/share/ovmf/PkKek-1-snakeoil.pem",
        passphrase: "snakeoil",
        package: "ovmf",
        // Its variable store is protected by SMM.
        machine: "q35,smm=on",
        qemuArgs: ["-global", "driver=cfi.pflash01,property=secure,value=on"],
      },
      shim: { file: "/usr/lib/shim/shimx64.efi", package: "shim-unsigned" },
    },
    qemu: {
      binary: "qemu-system-x86_64",
      package: "qemu-system-x86",
      machine: "q35",
      console: "ttyS0",
      tpm: { device: "tpm-tis" },
    },
  },
  arm64: {
    debian: "arm64",
    foreign: true,
    distSuffix: "-arm64",
    // Debian's cross compiler with musl for arm64 through musl's own gcc specs file.
    cc: "aarch64-linux-gnu-gcc",
    ccArgs: ["-specs", "/usr/lib/aarch64-linux-musl/musl-gcc.specs"],
    strip: "aarch64-linux-gnu-strip",
    libc: { file: "/usr/lib/aarch64-linux-musl/libc.a", package: "musl-dev:arm64" },
    runner: ["qemu-aarch64-static"],
    kernel: { metapackage: "linux-image-arm64", env: "STORAGE_INIT_KERNEL_PACKAGE_ARM64" },
    // Virtio over MMIO (device-tree platform devices, `of:` modaliases), the SoCs' own SD/MMC
    // and USB host controllers, and UFS. Matched by modalias at boot like the rest: only what
    // the board has is loaded.
    storageClasses: {
      virtio: ["virtio_mmio"],
      mmc: [
        "sdhci_of_arasan",
        "sdhci_of_dwcmshc",
        "sdhci_esdhc_imx",
        "sdhci_msm",
        "sdhci_tegra",
        "sdhci_iproc",
        "dw_mmc_rockchip",
        "mmc_block",
      ],
      usb: ["xhci_plat_hcd", "dwc3_of_simple"],
      ufs: ["ufshcd_pltfrm", "ufs_qcom", "ufshcd_pci", "ufs_mediatek", "ufs_exynos", "ufs_hisi"],
    },
    uefi: {
      efi: "aa64",
      // Debian 12's arm64 systemd-boot and systemd-stub (252) are PE files made by objcopy with
      // their sections merged into .text and .data: no .sbat, so shim refuses to start them
      // ("No .sbat section data"). Debian 13's (257) have their sections, .sbat among them.
      bootRelease: "trixie",
      peMachine: 0xaa64,
      objcopy: "aarch64-linux-gnu-objcopy",
      // AAVMF: OVMF for arm64, 64 MiB pflash images for QEMU's virt.
      firmware: {
        code: "/usr/share/AAVMF/AAVMF_CODE.fd",
        vars: "/usr/share/AAVMF/AAVMF_VARS.fd",
        package: "qemu-efi-aarch64",
      },
      // The same code (AAVMF always verifies once PK is enrolled) with the store that enrolls
      // Debian's snakeoil certificate in PK, KEK and db. No SMM on arm64: the store is not
      // protected from the OS, which these tests do not need.
      secureBoot: {
        code: "/usr/share/AAVMF/AAVMF_CODE.snakeoil.fd",
        vars: "/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd",
        key: "/usr/share/qemu-efi-aarch64/PkKek-1-snakeoil.key",
        cert: "/usr/share/qemu-efi-aarch64/PkKek-1-snakeoil.pem",
        passphrase: "snakeoil",
        package: "qemu-efi-aarch64",
        machine: "virt",
        qemuArgs: [],
      },
      shim: { file: "/usr/lib/shim/shimaa64.efi", package: "shim-unsigned" },
    },
    qemu: {
      binary: "qemu-system-aarch64",
      package: "qemu-system-arm",
      machine: "virt",
      console: "ttyAMA0",
      // virt offers only tpm-tis-device, on the platform bus; Debian's arm64 kernel builds no
      // driver for it (CONFIG_TCG_TIS is not set there).
      tpm: {
        none: "Debian's arm64 kernel has no driver for the TPM of QEMU's virt machine (tpm-tis-device: CONFIG_TCG_TIS)",
      },
    },
  },
};

/** The facts of `arch`; throws naming the known ones when it is none of them. */
export function archFacts(arch: string): ArchFacts {
  if (!isArch(arch)) throw new Error(`unknown architecture ${arch}; known: ${Object.keys(ARCHES).join(", ")}`);
  return ARCHES[arch];
}

export function isArch(arch: string): arch is Arch {
  return Object.keys(ARCHES).includes(arch);
}

/** The name of `arch`'s file `stem` + `rest` in dist/: storage-init, storage-init-arm64.efi, initramfs-arm64-all.cpio.gz. */
export function distName(arch: string, stem: string, rest: string = ""): string {
  return stem + archFacts(arch).distSuffix + rest;
}

/** Debian's package `name` for `arch`: `name:arm64` for a foreign architecture. */
export function debianPackageFor(arch: string, name: string): string {
  const a = archFacts(arch);
  return a.foreign ? `${name}:${a.debian}` : name;
}
