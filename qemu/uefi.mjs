// UEFI boots as a machine does them: OVMF (Debian's ovmf package; AAVMF on arm64) -> systemd-boot
// or the UKI itself as the removable-media loader -> systemd-stub -> the kernel with our
// initramfs. The firmware files are each architecture's, in toolchain/arches.ts.
//
// Secure Boot uses OVMF_CODE_4M.secboot.fd (SMM) with OVMF_VARS_4M.snakeoil.fd on x86-64, and
// AAVMF_CODE.snakeoil.fd with AAVMF_VARS.snakeoil.fd on arm64, whose PK, KEK and db hold
// Debian's test-only "snakeoil" certificate; its key ships beside it, protected by the
// passphrase "snakeoil", and is decrypted into the cache for sbsign.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DDI_PATH } from "../lib/facts.ts";
import { guidToBytes } from "../lib/hex.ts";
import { archFacts, debianPackageFor } from "../toolchain/arches.ts";
import { debianPackage } from "../toolchain/debian.mjs";
import { CACHE, requireTool, run } from "../toolchain/tools.mjs";
import { buildUki, stubFor, systemdBootFor } from "../toolchain/uki.mjs";
import { buildEspDisk } from "./images.ts";

/** shim's vendor GUID: MokList, MokListRT, MokListTrustedRT. */
const SHIM_LOCK_GUID = "605dab50-e046-4300-abb6-3dd810dd8b23";
/** EFI_CERT_X509_GUID: a signature list of X.509 certificates. */
const EFI_CERT_X509_GUID = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
/** EFI variable attributes: non-volatile, boot-service access. */
const EFI_VARIABLE_NV_BS = 0x3;

/** The demo's ESP (npm start, and its test). */
export const DEMO_ESP_PART_UUID = "de30de30-1d2c-4e3f-8a9b-0c1d2e3f4a5b";

/** Throws naming the package when a firmware file is missing. */
function need(file, pkg) {
  if (!existsSync(file)) throw new Error(`${file} not found: install it with 'apt-get install ${pkg}'`);
  return file;
}

/** The Secure Boot firmware of `arch` (toolchain/arches.ts); throws when the tests have none. */
function secureBootOf(arch) {
  const sb = archFacts(arch).uefi.secureBoot;
  if (sb === undefined) throw new Error(`no Secure Boot firmware for ${arch} here`);
  return sb;
}

/** The key of the certificate the Secure Boot firmware of `arch` trusts, decrypted, and that certificate: { key, cert } for sbsign. */
export function secureBootSigner(arch = "x86-64") {
  requireTool("openssl");
  const sb = secureBootOf(arch);
  const dir = join(CACHE, "uefi");
  const key = join(dir, `secure-boot-${arch}.key`);
  if (!existsSync(key)) {
    mkdirSync(dir, { recursive: true });
    run("openssl", ["pkey", "-in", need(sb.key, sb.package), "-passin", `pass:${sb.passphrase}`, "-out", key]);
  }
  return { key, cert: need(sb.cert, sb.package) };
}

/** shim for `arch`: installed, or for a foreign architecture fetched (shim-unsigned:arm64); throws when the tests have none. */
function shimOf(arch) {
  const a = archFacts(arch);
  const shim = a.uefi.shim;
  if (shim === undefined) throw new Error(`no shim for ${arch} here`);
  if (a.foreign) return join(debianPackage(debianPackageFor(arch, shim.package)), shim.file);
  return need(shim.file, shim.package);
}

/** Signs `file` into `out` with sbsign. */
export function sbsign(signer, file, out) {
  requireTool("sbsign");
  run("sbsign", ["--key", signer.key, "--cert", signer.cert, "--output", out, file]);
  return out;
}

/** A GUID's 16 bytes as UEFI stores them (lib/hex.ts: the first three fields little-endian). */
function guidBytes(guid) {
  const b = guidToBytes(guid);
  if (b === undefined) throw new Error(`${guid} is not a GUID`);
  return Buffer.from(b);
}

/** An EFI_SIGNATURE_LIST of one X.509 certificate (DER), owned by shim (as mokutil writes it). */
export function x509SignatureList(der) {
  const head = Buffer.alloc(28);
  guidBytes(EFI_CERT_X509_GUID).copy(head, 0);
  head.writeUInt32LE(28 + 16 + der.length, 16); // SignatureListSize
  head.writeUInt32LE(0, 20); // SignatureHeaderSize
  head.writeUInt32LE(16 + der.length, 24); // SignatureSize: owner GUID + certificate
  return Buffer.concat([head, guidBytes(SHIM_LOCK_GUID), der]);
}

/**
 * Adds a variable to an edk2 variable store (OVMF_VARS*.fd): the firmware volume header, the
 * authenticated variable store after it, and an AUTHENTICATED_VARIABLE_HEADER (60 bytes: start
 * id 0x55aa, state VAR_ADDED, attributes, count, time, key index, name and data sizes, vendor
 * GUID), the UTF-16 name and the data, at the store's first free 4-byte-aligned place
 * (MdeModulePkg/Include/Guid/VariableFormat.h). The firmware reads it at the next boot as if
 * it had been set before. Throws when the file is not such a store or has no room.
 */
export function addEfiVariable(file, { name, guid, attributes, data }) {
  const b = readFileSync(file);
  if (b.toString("latin1", 40, 44) !== "_FVH") throw new Error(`${file}: no firmware volume header`);
  const store = b.readUInt16LE(48);
  if (guidBytes("aaf32c78-947b-439a-a180-2e144ec37792").compare(b, store, store + 16) !== 0)
    throw new Error(`${file}: not an authenticated variable store`);
  const end = store + b.readUInt32LE(store + 16);
  let at = store + 28;
  while (b.readUInt16LE(at) === 0x55aa) {
    at += 60 + b.readUInt32LE(at + 36) + b.readUInt32LE(at + 40);
    at = (at + 3) & ~3;
  }
  const nameBytes = Buffer.from(name + "\0", "utf16le");
  const head = Buffer.alloc(60);
  head.writeUInt16LE(0x55aa, 0);
  head[2] = 0x3f; // VAR_ADDED
  head.writeUInt32LE(attributes, 4);
  head.writeUInt32LE(nameBytes.length, 36);
  head.writeUInt32LE(data.length, 40);
  guidBytes(guid).copy(head, 44);
  const entry = Buffer.concat([head, nameBytes, data]);
  if (at + entry.length > end) throw new Error(`${file}: no room for ${name} (${entry.length} bytes)`);
  entry.copy(b, at);
  writeFileSync(file, b);
}

/**
 * Enrolls the certificates `certPems` as Machine Owner Keys in the store `vars`: the MokList
 * variable mokutil --import and MokManager leave behind, one signature list per certificate.
 * shim mirrors it at boot into MokListRT, and, there being no MokListTrusted to say otherwise,
 * sets MokListTrustedRT: the kernel then puts the keys in its .machine keyring, which the
 * secondary keyring links.
 * @param {string} vars
 * @param {string[]} certPems
 */
export function enrollMok(vars, certPems) {
  const lists = certPems.map((pem) =>
    x509SignatureList(Buffer.from(run("openssl", ["x509", "-in", pem, "-outform", "DER"], { encoding: "buffer" }))),
  );
  addEfiVariable(vars, {
    name: "MokList",
    guid: SHIM_LOCK_GUID,
    attributes: EFI_VARIABLE_NV_BS,
    data: Buffer.concat(lists),
  });
}

/**
 * The firmware for bootQemu: `arch`'s UEFI code (toolchain/arches.ts) and a fresh writable
 * copy of its variable store in `dir` (each boot starts from the package's store). With
 * secureBoot, the Secure Boot build and its test store: only what its test key signed runs.
 * `mok`: certificates (PEM) enrolled as Machine Owner Keys (enrollMok).
 * @param {string} dir
 * @param {{ secureBoot?: boolean, arch?: string, mok?: string[] }} [opts]
 */
export function firmware(dir, { secureBoot = false, arch = "x86-64", mok = undefined } = {}) {
  const vars = join(dir, "OVMF_VARS.fd");
  const fw = secureBoot ? secureBootOf(arch) : archFacts(arch).uefi.firmware;
  copyFileSync(need(fw.vars, fw.package), vars);
  if (mok !== undefined) enrollMok(vars, mok);
  return { code: need(fw.code, fw.package), vars, secureBoot };
}

/**
 * The ESP's files for a UEFI boot from `dir`: with `bootloader`, systemd-boot as the
 * removable-media loader (\EFI\BOOT\BOOTX64.EFI) and the UKI as a Type #2 entry in \EFI\Linux
 * (systemd-boot finds it there, no entry file needed); without, the UKI itself as BOOTX64.EFI.
 * With `shim`, shim is BOOTX64.EFI and systemd-boot its grubx64.efi (BOOTAA64.EFI and
 * grubaa64.efi on arm64), as distributions ship them.
 * `extra`: more files [{ src, path }] (the DDIs of an A/B directory).
 */
export function espFiles(dir, { uki, bootloader, shim, ddi, ddiPath, extra = [], arch = "x86-64" }) {
  const removable = `/EFI/BOOT/BOOT${archFacts(arch).uefi.efi.toUpperCase()}.EFI`;
  const conf = join(dir, "loader.conf");
  writeFileSync(conf, "timeout 0\n");
  const files = [...(ddi === undefined ? [] : [{ src: ddi, path: ddiPath }]), ...extra];
  if (!bootloader) return [...files, { src: uki, path: removable }];
  files.push({ src: conf, path: "/loader/loader.conf" }, { src: uki, path: "/EFI/Linux/storage-init.efi" });
  // shim as the removable-media loader starts grub<efi>.efi beside it (grubx64.efi,
  // grubaa64.efi): systemd-boot, here.
  if (shim)
    files.push(
      { src: shim, path: removable },
      { src: bootloader, path: `/EFI/BOOT/grub${archFacts(arch).uefi.efi}.efi` },
    );
  else files.push({ src: bootloader, path: removable });
  return files;
}

/**
 * A UEFI boot disk in `dir`: the UKI of `kernel` ({ vmlinuz, version }) with `initrd` and
 * `cmdline`, and the DDI at `ddiPath` (and the `extra` files), on an ESP with PARTUUID
 * `espPartUuid`; through systemd-boot unless `direct`, started by shim with `shim`; signed with
 * `signer` (systemd-boot and shim too) when given. `tamper` edits the UKI after signing. `pcr`:
 * the UKI's signed PCR 11 policy (buildUki).
 * `espSpareBytes`: free room on the ESP beyond its files (for a booted system's update).
 * Returns { disk, uki, ukiSize }.
 * @param {string} dir
 * @param {{ kernel: { vmlinuz: string, version: string }, initrd: string, cmdline: string,
 *   ddi?: string, ddiPath?: string, extra?: Array<{ src: string, path: string }>,
 *   espPartUuid: string, direct?: boolean, shim?: boolean, signer?: { key: string, cert: string },
 *   osRelease?: string, tamper?: (uki: string) => void, arch?: string, espSpareBytes?: number,
 *   pcr?: { privateKey: string, publicKey: string, cmdline?: string } }} opts
 */
export function buildUefiDisk(
  dir,
  {
    kernel,
    initrd,
    cmdline,
    ddi,
    ddiPath = DEFAULT_DDI_PATH,
    extra = [],
    espPartUuid,
    direct = false,
    shim = false,
    signer,
    osRelease,
    tamper,
    arch = "x86-64",
    espSpareBytes = 0,
    pcr,
  },
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
    pcr,
  });
  tamper?.(uki.out);
  const loader = systemdBootFor(arch);
  const bootloader = direct ? undefined : signer ? sbsign(signer, loader, join(dir, "systemd-boot.efi")) : loader;
  const shimFile = !shim ? undefined : signer ? sbsign(signer, shimOf(arch), join(dir, "shim.efi")) : shimOf(arch);
  const disk = buildEspDisk(
    join(dir, "disk.img"),
    espFiles(dir, { uki: uki.out, bootloader, shim: shimFile, ddi, ddiPath, extra, arch }),
    { espPartUuid, spareBytes: espSpareBytes },
  );
  return { disk, uki: uki.out, ukiSize: uki.size };
}
