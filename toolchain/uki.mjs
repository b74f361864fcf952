// A Unified Kernel Image: systemd-stub with the kernel, our initramfs and the signed command line
// in PE sections (UAPI Unified Kernel Image specification), optionally signed for Secure Boot.
//
// Each section is placed after the stub's last section, aligned to the stub's SectionAlignment,
// in the order ukify uses; the addresses come from the stub's PE headers and the sizes, so a
// larger kernel or initramfs cannot overlap the next section. objcopy (binutils) writes them;
// sbsign (sbsigntool) signs. With a PCR key, .pcrpkey holds its public half and .pcrsig the
// signed PCR 11 policy systemd-measure predicts for the sections the stub measures (as ukify
// does): a volume enrolled with `systemd-cryptenroll --tpm2-public-key=` unlocks under any UKI
// whose policy that key signed, and under no other. Like ukify, it signs each of
// systemd-pcrphase's phases (enter-initrd, then leave-initrd, sysinit, ready): the key unseals
// in the booted system too, for other volumes; a volume meant to unlock only in the initrd is
// enrolled against a policy signed for enter-initrd alone (systemd-measure --phase=).
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ddiPathsOf } from "../lib/cmdline_words.ts";
import { stubLoadsFrom } from "../lib/facts.ts";
import { ARCHES, archFacts, debianPackageFor } from "./arches.ts";
import { debianPackage, systemdMeasure } from "./debian.mjs";
import { requireTool, run } from "./tools.mjs";

/**
 * A file of Debian's systemd-boot-efi for `arch` ("linux*.efi.stub", "systemd-boot*.efi"):
 * the installed one for the build machine's own architecture; for a foreign one from
 * systemd-boot-efi:<arch> of the release the architecture's facts name, fetched.
 */
function systemdBootFile(arch, name) {
  const a = archFacts(arch);
  const dir = a.foreign ? debianPackage(debianPackageFor(arch, "systemd-boot-efi"), a.uefi.bootRelease) : "/";
  return join(dir, "usr/lib/systemd/boot/efi", name);
}

/** The UKI's .osrel when none is given: what systemd-boot's menu shows. */
export const DEFAULT_OS_RELEASE =
  'ID=storage-init\nNAME="storage-init"\nPRETTY_NAME="storage-init (verified DDI on the ESP)"\n';

/** systemd-stub for `arch`. */
export function stubFor(arch) {
  return systemdBootFile(arch, `linux${archFacts(arch).uefi.efi}.efi.stub`);
}

/** systemd-boot for `arch`. */
export function systemdBootFor(arch) {
  return systemdBootFile(arch, `systemd-boot${archFacts(arch).uefi.efi}.efi`);
}

/**
 * The PE32+ headers of `pe`: its machine (0x8664 x86-64, 0xaa64 arm64), ImageBase,
 * SectionAlignment and its sections ({ name, rva, virtualSize, rawSize, raw }).
 */
function peHeaders(pe) {
  const b = Buffer.from(pe.buffer, pe.byteOffset, pe.byteLength);
  const at = b.readUInt32LE(0x3c);
  if (b.toString("latin1", at, at + 4) !== "PE\0\0") throw new Error("not a PE image (no PE signature)");
  const opt = at + 24;
  if (b.readUInt16LE(opt) !== 0x20b) throw new Error("not a PE32+ image");
  const table = opt + b.readUInt16LE(at + 20);
  const sections = [];
  for (let i = 0; i < b.readUInt16LE(at + 6); i++) {
    const s = table + 40 * i;
    sections.push({
      name: b.toString("latin1", s, s + 8).replace(/\0+$/, ""),
      virtualSize: b.readUInt32LE(s + 8),
      rva: b.readUInt32LE(s + 12),
      rawSize: b.readUInt32LE(s + 16),
      raw: b.readUInt32LE(s + 20),
    });
  }
  return {
    machine: b.readUInt16LE(at + 4),
    imageBase: b.readBigUInt64LE(opt + 24),
    sectionAlignment: b.readUInt32LE(opt + 32),
    sections,
  };
}

/**
 * The stub's PE layout: its machine, ImageBase, SectionAlignment, its section names and the first
 * address after its sections (relative to ImageBase).
 */
export function peLayout(pe) {
  const h = peHeaders(pe);
  let end = 0;
  for (const s of h.sections) end = Math.max(end, s.rva + Math.max(s.virtualSize, s.rawSize));
  return {
    machine: h.machine,
    imageBase: h.imageBase,
    sectionAlignment: h.sectionAlignment,
    end,
    names: h.sections.map((s) => s.name),
  };
}

/** Section names -> files, in the order ukify places them; .linux last (the largest). */
const ORDER = [".osrel", ".cmdline", ".uname", ".pcrsig", ".pcrpkey", ".initrd", ".linux"];

/**
 * The sections systemd-stub measures into PCR 11 (in its own order, whatever their place), of
 * those buildUki() writes: every one but .pcrsig. That is bookworm's stub (252); a later stub also
 * measures .uname and its own .sbat, which its section-name strings tell (it knows ".uname"), and
 * for which no prediction is made here: such a stub is refused rather than given a policy that
 * would never match.
 */
export function measuredSections(stub) {
  if (readFileSync(stub).includes(Buffer.from(".uname\0")))
    throw new Error(
      `${stub} measures .uname and .sbat into PCR 11, which the PCR policy here does not predict (bookworm's systemd-stub 252 does not)`,
    );
  return [".linux", ".osrel", ".cmdline", ".initrd", ".pcrpkey"];
}

/**
 * The .pcrsig section's JSON: systemd-measure's signatures of the PCR 11 values the stub will
 * leave in the sha256 bank, for each of its default boot phases (enter-initrd, then on through
 * leave-initrd, sysinit and ready), over the files of the measured sections.
 */
function pcrSignature(stub, files, pcr) {
  const measure = systemdMeasure();
  const args = ["sign", "--bank=sha256", `--private-key=${pcr.privateKey}`, `--public-key=${pcr.publicKey}`];
  for (const name of measuredSections(stub)) args.push(`--${name.slice(1)}=${files[name]}`);
  return run(measure.bin, args, { env: measure.env });
}

/**
 * Where each section goes: [{ name, file, vma (absolute), size }], packed after the stub's
 * sections at its SectionAlignment.
 */
export function placeSections(layout, files) {
  const align = (n) => Math.ceil(n / layout.sectionAlignment) * layout.sectionAlignment;
  let rva = align(layout.end);
  const out = [];
  for (const name of ORDER) {
    const file = files[name];
    if (file === undefined) continue;
    if (layout.names.includes(name)) throw new Error(`the stub already has a ${name} section`);
    const size = statSync(file).size;
    out.push({ name, file, vma: layout.imageBase + BigInt(rva), size });
    rva = align(rva + size);
  }
  return out;
}

/**
 * Writes the UKI `out` from `stub`, the kernel image, the initramfs, the command line, an
 * os-release and the kernel release; signs it when `sign` ({ key, cert }) is given, and adds
 * the signed PCR 11 policy when `pcr` ({ privateKey, publicKey }: PEM files) is given, predicted
 * for `pcr.cmdline` where that is given instead of `cmdline` (a UKI whose command line was
 * changed after its policy was signed). Returns { out, size, sections }.
 * @param {{ stub: string, kernel: string, initrd: string, cmdline: string, osRelease: string,
 *   uname: string, out: string, sign?: { key: string, cert: string },
 *   pcr?: { privateKey: string, publicKey: string, cmdline?: string } }} opts
 */
export function buildUki({ stub, kernel, initrd, cmdline, osRelease, uname, out, sign, pcr }) {
  if (!existsSync(stub)) throw new Error(`${stub}: no systemd-stub (apt-get install systemd-boot-efi)`);
  // Every path of every storage_init.ddi= (either spelling), split as the init splits them.
  for (const path of ddiPathsOf(cmdline)) {
    const where = stubLoadsFrom(path);
    if (where !== undefined)
      throw new Error(
        `storage_init.ddi= names ${path}, which lies ${where}: systemd-stub would load the whole DDI into memory as a system extension`,
      );
  }
  const tmp = `${out}.parts`;
  rmSync(tmp, { recursive: true, force: true });
  run("mkdir", ["-p", tmp]);
  const text = (name, s) => {
    const f = join(tmp, name);
    writeFileSync(f, s);
    return f;
  };
  const files = {
    ".osrel": text("osrel", osRelease),
    ".cmdline": text("cmdline", cmdline.trim() + "\n"),
    ".uname": text("uname", uname),
    ".initrd": initrd,
    ".linux": kernel,
  };
  if (pcr) {
    files[".pcrpkey"] = pcr.publicKey;
    const signedFor =
      pcr.cmdline === undefined ? files : { ...files, ".cmdline": text("cmdline.signed", pcr.cmdline.trim() + "\n") };
    files[".pcrsig"] = text("pcrsig", pcrSignature(stub, signedFor, pcr));
  }
  const layout = peLayout(readFileSync(stub));
  // The host's objcopy knows only its own PE flavour; binutils-aarch64-linux-gnu has arm64's.
  const arch = Object.values(ARCHES).find((a) => a.uefi.peMachine === layout.machine);
  if (arch === undefined) throw new Error(`${stub}: PE machine 0x${layout.machine.toString(16)} is no architecture's`);
  const objcopy = arch.uefi.objcopy;
  requireTool(objcopy);
  const sections = placeSections(layout, files);
  const args = [];
  for (const s of sections)
    args.push("--add-section", `${s.name}=${s.file}`, "--change-section-vma", `${s.name}=0x${s.vma.toString(16)}`);
  const unsigned = sign ? `${out}.unsigned` : out;
  run(objcopy, [...args, stub, unsigned]);
  if (sign) {
    requireTool("sbsign");
    run("sbsign", ["--key", sign.key, "--cert", sign.cert, "--output", out, unsigned]);
    rmSync(unsigned);
  }
  rmSync(tmp, { recursive: true, force: true });
  return { out, size: statSync(out).size, sections };
}

/** The bytes of section `name` of a PE image (a UKI's `.cmdline`, say); throws when it has none. */
export function readSection(file, name) {
  const b = readFileSync(file);
  const s = peHeaders(b).sections.find((x) => x.name === name);
  if (!s) throw new Error(`${file}: no ${name} section`);
  return b.subarray(s.raw, s.raw + Math.min(s.virtualSize, s.rawSize));
}

/** The sections of the PE image `file` (name, rva, virtualSize, rawSize, raw), for its tests. */
export function peSections(file) {
  return peHeaders(readFileSync(file)).sections;
}
