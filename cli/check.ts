/**
 * `storage-init check`: what the boot would do with a disk image or an ESP directory and a
 * kernel command line, decided by the init's own modules (runtime/) under Node, and whether
 * the root it would mount verifies. For image builders, before they flash: the exit status is
 * 0 only when the boot would reach a verified root.
 *
 * As the boot does: the ESPs in turn (the selector's, else every ESP by type), on each the DDIs
 * storage_init.ddi= names (vpick directories newest first), and on each DDI its partitions and
 * signature as readDdiLayout() reads them for the policy; then the verity superblock's geometry,
 * the erofs superblock within what verity covers, and the root hash recomputed over the data
 * (`veritysetup verify`, cryptsetup's own implementation). A signature the boot would have the
 * kernel check is checked here with openssl against the certificates given (`--certificate`:
 * those the target kernel's keyrings hold): with storage_init.root_policy=signed it must verify;
 * pinned by roothash=, one that is not checked or does not verify is a warning, as at boot. Then
 * what the boot checks in the mounted root, on the erofs extracted: an init, and the image's
 * version (IMAGE_VERSION=) against its name and storage_init.min_version=. The first DDI that
 * passes is the one the boot takes.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { errorText } from "../lib/errors.js";
import { MEMORY_DDI_DIR, memoryDdiPaths } from "../lib/facts.js";
import { withReader } from "../syscalls/files.js";
import { BUILD_POLICY } from "../runtime/build_facts.js";
import type { PolicyFacts } from "../runtime/build_facts.js";
import { parseCmdline, verificationRefusal } from "../runtime/cmdline.js";
import type { Config } from "../runtime/cmdline.js";
import { readDdiLayout, rootWant } from "../runtime/ddi.js";
import {
  EROFS_SUPERBLOCK_OFFSET,
  EROFS_SUPERBLOCK_SIZE,
  erofsFitRefusal,
  parseErofsSuperblock,
} from "../runtime/erofs.js";
import { parseEspSelector, selects, typeSelector } from "../runtime/esp.js";
import { readGptFile } from "../runtime/blockdev.js";
import { checkVerityGeometry, parseVeritySuperblock, VERITY_SUPERBLOCK_SIZE } from "../runtime/verity.js";
import type { VeritySignature } from "../runtime/verity_sig.js";
import { signerRefusal } from "../runtime/pkcs7.js";
import { readImageVersion, requireInit, secondStage } from "../runtime/root_files.js";
import { imageVersionRefusal, imageVersionWarning, listDdis } from "../runtime/vpick.js";
import type { DdiName } from "../runtime/vpick.js";
import { NodeKernel } from "./node_kernel.js";

export interface Verdict {
  /** True when the boot would reach a verified root. */
  ok: boolean;
  lines: string[];
}

export interface CheckOptions {
  arch?: string;
  /** The policy facts of the init the image boots with (from its initramfs); this package's defaults otherwise. */
  build?: PolicyFacts;
  /** Certificates (PEM files) the target kernel trusts for dm-verity signatures (MOK, builtin). */
  certificates?: string[];
  /** The target kernel's page size, the largest verity block it takes; by default the architecture's, or assumed and said. */
  pageSize?: number;
}

/** Architectures whose kernels have one page size. arm64's is the kernel's choice (4, 16 or 64 KiB). */
const ARCH_PAGE_SIZE: Record<string, number> = { "x86-64": 4096 };
/** What is assumed of a kernel whose page size is not known: Debian's arm64 kernels have 4 KiB pages. */
const ASSUMED_PAGE_SIZE = 4096;

/**
 * The page size an arm64 kernel Image says in its header (Documentation/arch/arm64/booting.rst:
 * the magic "ARM\x64" at byte 56, flags at byte 24, bits 1-2: 1 for 4 KiB, 2 for 16 KiB, 3 for
 * 64 KiB), or undefined when `image` is not such an Image or does not say.
 */
export function arm64PageSize(image: Uint8Array): number | undefined {
  if (image.length < 64 || image[56] !== 0x41 || image[57] !== 0x52 || image[58] !== 0x4d || image[59] !== 0x64)
    return undefined;
  const bits = (image[24] >> 1) & 3;
  return bits === 0 ? undefined : [0, 4096, 16384, 65536][bits];
}

const k = new NodeKernel();

/** The bytes [offset, offset + n) of `file`. */
function readAt(file: string, offset: number, n: number): Uint8Array {
  return withReader(k, file, (read) => read(offset, n));
}

/** Runs a tool, its output on success; throws with its stderr. */
function tool(cmd: string, args: string[], input?: Uint8Array): string {
  try {
    return execFileSync(cmd, args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`${cmd}: ${String((e as { stderr?: string }).stderr ?? "").trim()}`);
  }
}

/**
 * The ESPs of a disk image the boot would try, each copied out as a directory under `tmp`
 * (mcopy: no mount): the selector's, else every ESP by type.
 */
function imageEsps(disk: string, selector: string | undefined, tmp: string): Array<{ name: string; dir: string }> {
  const gpt = readGptFile(k, disk, statSync(disk).size);
  const sel = selector === undefined ? typeSelector() : parseEspSelector(selector);
  if (sel.kind === "device") throw new Error(`${selector}: a device path cannot be checked in an image`);
  const out = [];
  for (const p of gpt.partitions) {
    if (!selects(sel, p)) continue;
    const dir = join(tmp, `esp${p.number}`);
    mkdirSync(dir);
    tool("mcopy", ["-s", "-n", "-i", `${disk}@@${p.offset}`, "::/*", dir]);
    out.push({ name: `partition ${p.number} (PARTUUID ${p.partGuid})`, dir });
  }
  return out;
}

/**
 * Checks a signature the boot would have the kernel check: taken by the boot's own rule
 * (signerRefusal(): one certificate, the signer, its fingerprint computed and pinned), and with
 * `certificates`, verified by openssl over the root hash text with the signer among them.
 */
function checkSignature(
  sig: VeritySignature,
  config: Config,
  certificates: string[],
  tmp: string,
  say: (s: string) => void,
): void {
  const p7 = join(tmp, "signature.p7");
  const content = join(tmp, "roothash.txt");
  writeFileSync(p7, sig.pkcs7);
  writeFileSync(content, sig.rootHash);
  const signer = { fingerprint: "" };
  // The boot's own rule: one certificate, the signer, computed; the pinned signer.
  const notTaken = signerRefusal(sig.pkcs7, sig.fingerprint, config.certificateFingerprints, signer);
  say(
    `  signature: PKCS#7 of ${sig.pkcs7.length} bytes; signer's certificate SHA-256 ` +
      (signer.fingerprint === "" ? "unknown" : signer.fingerprint) +
      (config.certificateFingerprints.length === 0 ? "" : `; pinned: ${config.certificateFingerprints.join(", ")}`),
  );
  if (notTaken !== "") throw new Error(`the signature is not taken: ${notTaken}`);
  if (certificates.length === 0)
    throw new Error(
      "the boot has the kernel check this signature against its keyrings: give --certificate with the certificates they hold (the enrolled MOK, the kernel's own) to check it here",
    );
  const trusted = join(tmp, "trusted.pem");
  writeFileSync(trusted, certificates.map((c) => tool("openssl", ["x509", "-in", c])).join(""));
  try {
    // Only the given certificates can be the signer (-nointern), as only the kernel's keys can be.
    tool("openssl", [
      "cms",
      "-verify",
      "-binary",
      "-inform",
      "DER",
      "-in",
      p7,
      "-content",
      content,
      "-certfile",
      trusted,
      "-nointern",
      "-noverify",
      "-out",
      "/dev/null",
    ]);
  } catch (e) {
    throw new Error(`the signature does not verify with any --certificate (${errorText(e)})`);
  }
  say(`  signature verifies over root hash ${sig.rootHash} with a --certificate`);
}

/**
 * What the boot checks once the root is mounted, with its own functions over the erofs
 * extracted (fsck.erofs, erofs-utils' own reader): an init to execute, and the image's version
 * against the name's and the floor.
 */
function checkMountedRoot(
  data: string,
  claimed: string | undefined,
  config: Config,
  tmp: string,
  say: (s: string) => void,
): void {
  const tree = join(tmp, "tree");
  tool("fsck.erofs", [`--extract=${tree}`, "--no-preserve", data]);
  const init = requireInit(k, tree, config.init);
  const v = readImageVersion(k, tree);
  if (secondStage(k, tree, config.secondStage))
    say("  second stage: a systemd initrd (/etc/initrd-release); the boot runs it under a tmpfs overlay");
  say(
    `  root: init ${init}; ` +
      (v.version === "" ? "no IMAGE_VERSION=" : `IMAGE_VERSION=${v.version} (${v.file})`) +
      (config.minVersion === "" ? "" : `, floor ${config.minVersion}`),
  );
  const refusal = imageVersionRefusal(config.rootPolicy === "signed", claimed, v.version, config.minVersion);
  if (refusal !== "") throw new Error(refusal);
  const warning = imageVersionWarning(claimed, v.version);
  if (warning !== "") say(`  warning: ${warning}`);
}

/** Checks the DDI file `ddi` as the boot would; throws with the first reason it fails. */
function checkDdi(
  ddi: string,
  claimed: string | undefined,
  config: Config,
  opts: Required<CheckOptions>,
  tmp: string,
  say: (s: string) => void,
): void {
  const layout = readDdiLayout(k, ddi, opts.arch, rootWant(config));
  say(`  root partition ${layout.root.number} (${layout.root.partGuid}), ${layout.root.size} bytes`);
  const verity = layout.verity;
  if (verity === undefined) {
    say("  systemd.verity=0: no verification (the boot mounts it unverified)");
    const data = join(tmp, "root");
    writeFileSync(data, readAt(ddi, layout.root.offset, layout.root.size));
    checkMountedRoot(data, claimed, config, tmp, say);
    return;
  }
  const sb = parseVeritySuperblock(readAt(ddi, verity.partition.offset, VERITY_SUPERBLOCK_SIZE));
  checkVerityGeometry(
    sb,
    layout.root.size,
    verity.partition.size,
    verity.rootHash,
    opts.pageSize,
    config.allowWeakHash,
  );
  say(
    `  verity partition ${verity.partition.number} (${verity.partition.partGuid}): ${sb.algorithm}, ` +
      `${sb.dataBlocks} blocks of ${sb.dataBlockSize}`,
  );
  const data = join(tmp, "root");
  const hash = join(tmp, "verity");
  writeFileSync(data, readAt(ddi, layout.root.offset, layout.root.size));
  writeFileSync(hash, readAt(ddi, verity.partition.offset, verity.partition.size));
  // The boot reads this superblock through dm-verity; here the recomputation below vouches for it.
  const fs = parseErofsSuperblock(readAt(data, EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_SIZE));
  const refusal = erofsFitRefusal(fs, sb.dataBlocks * sb.dataBlockSize);
  if (refusal !== "") throw new Error(refusal);
  say(`  erofs: ${fs.blocks} blocks of ${fs.blockSize}, within what verity covers`);
  const source = config.rootHash === undefined ? "its signature's rootHash" : "roothash=";
  try {
    execFileSync("veritysetup", ["verify", data, hash, verity.rootHash], { stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = String((e as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`the root hash recomputed over the data is not ${source} (veritysetup verify: ${err})`);
  }
  say(`  root hash recomputed over the data: matches ${source}`);
  if (verity.signature !== undefined) {
    try {
      checkSignature(verity.signature, config, opts.certificates, tmp, say);
    } catch (e) {
      if (config.rootPolicy === "signed") throw e;
      // As the boot: roothash= vouches for the root, and a signature the kernel refuses is warned of.
      say(
        `  warning: the signature ${opts.certificates.length === 0 ? "was not checked" : "did not verify"}: ${errorText(e)}; ` +
          "roothash= pins the root, so the boot activates it without the signature where the kernel refuses it",
      );
    }
  }
  checkMountedRoot(data, claimed, config, tmp, say);
}

/** The options with their defaults; `known`, the page size when it is known rather than assumed. */
function withDefaults(options: CheckOptions): { opts: Required<CheckOptions>; known: number | undefined } {
  const arch = options.arch ?? "x86-64";
  const known = options.pageSize ?? ARCH_PAGE_SIZE[arch];
  return {
    opts: {
      arch,
      certificates: options.certificates ?? [],
      build: options.build ?? BUILD_POLICY,
      pageSize: known ?? ASSUMED_PAGE_SIZE,
    },
    known,
  };
}

/**
 * The verdict for the DDI file `ddi` carried in memory at `at` (under MEMORY_DDI_DIR) and booted
 * with `cmdline`, as the boot takes a DDI in memory: among those storage_init.ddi= names there
 * (listDdis() over a folder laid out as the initramfs will be: a vpick directory's entry must be
 * named as one, for this architecture), then checked as each DDI is. For the build, which
 * carries a DDI only when the command line it is given would take it (roothash= pins it, or its
 * signature the policy takes verifies).
 */
export function checkMemoryDdi(ddi: string, at: string, cmdline: string, options: CheckOptions = {}): Verdict {
  const { opts } = withDefaults(options);
  const lines: string[] = [];
  const config = parseCmdline(cmdline, opts.build);
  if (config.problems.length > 0) return { ok: false, lines: ["kernel command line: " + config.problems.join("; ")] };
  const unverified = verificationRefusal(config);
  if (unverified !== "") return { ok: false, lines: [unverified] };
  const tmp = mkdtempSync(join(tmpdir(), "storage-init-check-"));
  const say = (s: string) => lines.push(s);
  try {
    const place = join(tmp, "initramfs");
    mkdirSync(dirname(join(place, at)), { recursive: true });
    // The file itself, as the initramfs will hold it (a symbolic link is no regular file).
    try {
      linkSync(ddi, join(place, at));
    } catch {
      copyFileSync(ddi, join(place, at));
    }
    const paths = memoryDdiPaths(config.ddiPaths);
    const ddis = listDdis(k, place + MEMORY_DDI_DIR, paths, opts.arch, { info: say, warn: say }, []);
    const taken = ddis.find((d) => MEMORY_DDI_DIR + d.path === at);
    if (taken === undefined)
      throw new Error(`the boot takes no DDI at ${at}: it looks for ${paths.join(", ")} in ${MEMORY_DDI_DIR}`);
    checkDdi(ddi, taken.claimed, config, opts, tmp, say);
    return { ok: true, lines };
  } catch (e) {
    lines.push(`refused: ${errorText(e)}`);
    return { ok: false, lines };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The verdict for `target` (a disk image, or a directory holding an ESP's files) booted with
 * `cmdline`.
 */
export function check(target: string, cmdline: string, options: CheckOptions = {}): Verdict {
  const { opts, known } = withDefaults(options);
  const arch = opts.arch;
  const lines: string[] = [];
  const say = (s: string) => lines.push(s);
  const config = parseCmdline(cmdline, opts.build);
  if (config.problems.length > 0) return { ok: false, lines: ["kernel command line: " + config.problems.join("; ")] };
  const unverified = verificationRefusal(config);
  if (unverified !== "") return { ok: false, lines: [unverified] };
  say(
    config.rootPolicy === "signed"
      ? "policy: signed: the root hash comes from a signature the kernel accepts"
      : `policy: verity: roothash= pins the root`,
  );
  if (known === undefined)
    say(
      `page size: ${ASSUMED_PAGE_SIZE} assumed, as Debian's ${arch} kernels have (a kernel with larger pages takes larger verity blocks: give --page-size, or --uki to read it from the kernel)`,
    );
  if (config.minVersion !== "")
    say(
      `floor: storage_init.min_version=${config.minVersion}: no image older activates, nor one without IMAGE_VERSION=`,
    );
  const tmp = mkdtempSync(join(tmpdir(), "storage-init-check-"));
  try {
    const dir = statSync(target).isDirectory();
    const esps = dir ? [{ name: target, dir: target }] : imageEsps(target, config.esp, tmp);
    if (esps.length === 0) return { ok: false, lines: [...lines, `${target}: no ESP the boot would take`] };
    if (!dir && config.esp === undefined)
      say("ESP: by type (the boot takes LoaderDevicePartUUID first when a loader or the stub sets it)");
    for (const esp of esps) {
      say(`ESP ${esp.name}:`);
      // The boot's own list, in its order, with its lines.
      const indented = (line: string) => say(`  ${line}`);
      let ddis: DdiName[] = [];
      try {
        ddis = listDdis(k, esp.dir, config.ddiPaths, opts.arch, { info: indented, warn: indented }, []);
      } catch (e) {
        say(`  refused: ${errorText(e)} (storage_init.ddi=${config.ddiPaths.join(",")})`);
      }
      for (const { path, claimed } of ddis) {
        say(`  DDI ${path}`);
        const work = join(tmp, "work");
        rmSync(work, { recursive: true, force: true });
        mkdirSync(work);
        try {
          const file = join(esp.dir, path);
          if (!existsSync(file)) throw new Error(`no DDI at ${path}`);
          checkDdi(file, claimed, config, opts, work, say);
          say(`verdict: the boot would take ${path} on ESP ${esp.name}, and its root verifies`);
          return { ok: true, lines };
        } catch (e) {
          say(`  refused: ${errorText(e)}`);
        }
      }
    }
    say("verdict: no ESP holds a DDI this boot can use: the boot would fail");
    return { ok: false, lines };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
