// UEFI boots as a machine does them: OVMF (Debian's ovmf package) -> systemd-boot or the UKI
// itself as the removable-media loader -> systemd-stub -> the kernel with our initramfs.
//
// Secure Boot uses OVMF_CODE_4M.secboot.fd (SMM) with OVMF_VARS_4M.snakeoil.fd, whose PK, KEK
// and db hold Debian's test-only "snakeoil" certificate; its key ships beside it, protected by
// the passphrase "snakeoil", and is decrypted into the cache for sbsign.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DDI_PATH } from "../lib/facts.ts";
import { CACHE, requireTool, run } from "../toolchain/tools.mjs";
import { buildUki, stubFor, systemdBootFor } from "../toolchain/uki.mjs";
import { buildEspDisk } from "./images.mjs";

/** AAVMF: OVMF for arm64 (Debian's qemu-efi-aarch64), 64 MiB pflash images for QEMU's virt. */
export const AAVMF = { code: "/usr/share/AAVMF/AAVMF_CODE.fd", vars: "/usr/share/AAVMF/AAVMF_VARS.fd" };

export const OVMF = {
  code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
  secbootCode: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
  snakeoilVars: "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd",
  snakeoilKey: "/usr/share/ovmf/PkKek-1-snakeoil.key",
  snakeoilCert: "/usr/share/ovmf/PkKek-1-snakeoil.pem",
};

/** The demo's ESP (npm start, and its test). */
export const DEMO_ESP_PART_UUID = "de30de30-1d2c-4e3f-8a9b-0c1d2e3f4a5b";

/** Throws naming the package when a firmware file is missing. */
function need(file, pkg) {
  if (!existsSync(file)) throw new Error(`${file} not found: install it with 'apt-get install ${pkg}'`);
  return file;
}

/** The snakeoil key, decrypted, and its certificate: { key, cert } for sbsign. */
export function snakeoilSigner() {
  requireTool("openssl");
  const dir = join(CACHE, "uefi");
  const key = join(dir, "snakeoil.key");
  if (!existsSync(key)) {
    mkdirSync(dir, { recursive: true });
    run("openssl", ["pkey", "-in", need(OVMF.snakeoilKey, "ovmf"), "-passin", "pass:snakeoil", "-out", key]);
  }
  return { key, cert: need(OVMF.snakeoilCert, "ovmf") };
}

/** Signs `file` into `out` with sbsign. */
export function sbsign(signer, file, out) {
  requireTool("sbsign");
  run("sbsign", ["--key", signer.key, "--cert", signer.cert, "--output", out, file]);
  return out;
}

/**
 * The firmware for bootQemu: OVMF's code and a fresh writable copy of its variable store in
 * `dir` (each boot starts from the package's store). With secureBoot, the Secure Boot build and
 * the snakeoil store: only what the snakeoil key signed runs.
 */
export function firmware(dir, { secureBoot = false, arch = "x86-64" } = {}) {
  const vars = join(dir, "OVMF_VARS.fd");
  if (arch === "arm64") {
    if (secureBoot) throw new Error("no Secure Boot firmware for arm64 here");
    copyFileSync(need(AAVMF.vars, "qemu-efi-aarch64"), vars);
    return { code: need(AAVMF.code, "qemu-efi-aarch64"), vars, secureBoot };
  }
  copyFileSync(need(secureBoot ? OVMF.snakeoilVars : OVMF.vars, "ovmf"), vars);
  return { code: need(secureBoot ? OVMF.secbootCode : OVMF.code, "ovmf"), vars, secureBoot };
}

/**
 * The ESP's files for a UEFI boot from `dir`: with `bootloader`, systemd-boot as the
 * removable-media loader (\EFI\BOOT\BOOTX64.EFI) and the UKI as a Type #2 entry in \EFI\Linux
 * (systemd-boot finds it there, no entry file needed); without, the UKI itself as BOOTX64.EFI.
 */
export function espFiles(dir, { uki, bootloader, ddi, ddiPath, arch = "x86-64" }) {
  const removable = arch === "arm64" ? "/EFI/BOOT/BOOTAA64.EFI" : "/EFI/BOOT/BOOTX64.EFI";
  const conf = join(dir, "loader.conf");
  writeFileSync(conf, "timeout 0\n");
  const files = [{ src: ddi, path: ddiPath }];
  if (bootloader) {
    files.push(
      { src: bootloader, path: removable },
      { src: conf, path: "/loader/loader.conf" },
      { src: uki, path: "/EFI/Linux/storage-init.efi" },
    );
  } else files.push({ src: uki, path: removable });
  return files;
}

/**
 * A UEFI boot disk in `dir`: the UKI of `kernel` ({ vmlinuz, version }) with `initrd` and
 * `cmdline`, and the DDI at the default path, on an ESP with PARTUUID `espPartUuid`; through
 * systemd-boot unless `direct`; signed with `signer` (systemd-boot too) when given. `tamper`
 * edits the UKI after signing. Returns { disk, uki, ukiSize }.
 * @param {string} dir
 * @param {{ kernel: { vmlinuz: string, version: string }, initrd: string, cmdline: string,
 *   ddi: string, espPartUuid: string, direct?: boolean, signer?: { key: string, cert: string },
 *   osRelease?: string, tamper?: (uki: string) => void, arch?: string }} opts
 */
export function buildUefiDisk(
  dir,
  { kernel, initrd, cmdline, ddi, espPartUuid, direct = false, signer, osRelease, tamper, arch = "x86-64" },
) {
  const uki = buildUki({
    stub: stubFor(arch),
    kernel: kernel.vmlinuz,
    initrd,
    cmdline,
    osRelease: osRelease ?? 'ID=storage-init-test\nPRETTY_NAME="storage-init test"\n',
    uname: kernel.version,
    out: join(dir, "storage-init.efi"),
    sign: signer,
  });
  tamper?.(uki.out);
  const loader = systemdBootFor(arch);
  const bootloader = direct ? undefined : signer ? sbsign(signer, loader, join(dir, "systemd-boot.efi")) : loader;
  const disk = buildEspDisk(
    join(dir, "disk.img"),
    espFiles(dir, { uki: uki.out, bootloader, ddi, ddiPath: DEFAULT_DDI_PATH, arch }),
    {
      espPartUuid,
    },
  );
  return { disk, uki: uki.out, ukiSize: uki.size };
}
