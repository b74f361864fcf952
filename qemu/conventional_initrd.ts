// The conventional initrd for the encrypted root (qemu/encrypted_root.ts), to compare the second
// stage with: what Debian's dracut (059, bookworm) generates for such a system, with the
// cryptsetup, LVM and TPM2 support Debian ships (the crypt, lvm, tpm2-tss and systemd-pcrphase
// modules; initramfs-tools, Debian's default, has no TPM2 unlock). Generic (dracut's default
// without a host-only configuration): built here, not on the machine it boots. Cached under
// .cache/second-stage/dracut-<key>/initrd.img.
//
// dracut runs in a Debian tree of its own (debootstrap: dracut, systemd, cryptsetup, lvm2, the
// TPM2 software stack and tpm2-tools, which its tpm2-tss module requires) with the kernel's
// modules copied in, chrooted (qemu/debian_root.ts inChroot()).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CACHE, requireTool, ROOT, run } from "../toolchain/tools.mjs";
import { debianMirror } from "./demo_root.mjs";
import { fetchKernel } from "./kernel.mjs";
import { inChroot } from "./debian_root.ts";
import { copyTree, keyOf, SECOND_STAGE_PACKAGES } from "./second_stage.ts";

/**
 * The packages of dracut's tree beyond minbase: the second stage's (systemd, udev, LVM,
 * cryptsetup, the TPM2 software stack), and dracut, the cryptsetup its crypt module installs
 * from, and tpm2-tools, which its tpm2-tss module requires.
 */
const DRACUT_PACKAGES = [...SECOND_STAGE_PACKAGES, "cryptsetup", "dracut", "dracut-core", "tpm2-tools"];

/** dracut's modules beyond its defaults: LUKS, LVM, the TPM2 stack and the PCR 11 phases. */
const DRACUT_MODULES = ["crypt", "lvm", "tpm2-tss", "systemd-pcrphase"];

/** Builds (or reuses) dracut's initrd for the kernel the tests boot. Returns its file. */
export function buildConventionalInitrd(): string {
  const kernel = fetchKernel("x86-64");
  const source = readFileSync(join(ROOT, "qemu", "conventional_initrd.ts"), "utf8");
  const dir = join(
    CACHE,
    "second-stage",
    `dracut-${keyOf(...DRACUT_PACKAGES, "|", ...DRACUT_MODULES, kernel.version, source)}`,
  );
  const initrd = join(dir, "initrd.img");
  if (existsSync(initrd)) return initrd;
  requireTool("debootstrap");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tree = join(dir, "tree");
  const t0 = performance.now();
  console.log("conventional initrd: debootstrap bookworm with dracut (about two minutes)");
  run("debootstrap", ["--variant=minbase", `--include=${DRACUT_PACKAGES.join(",")}`, "bookworm", tree, debianMirror()]);
  copyTree(kernel.modulesDir, join(tree, "lib", "modules", kernel.version));
  inChroot(tree, [
    "dracut",
    "--force",
    "--no-hostonly",
    "--add",
    DRACUT_MODULES.join(" "),
    "--kver",
    kernel.version,
    "/initrd.img",
  ]);
  renameSync(join(tree, "initrd.img"), `${initrd}.tmp`);
  rmSync(tree, { recursive: true, force: true });
  renameSync(`${initrd}.tmp`, initrd);
  console.log(`conventional initrd: dracut's initrd built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return initrd;
}
