// An installed system's encrypted disk, as a machine with full-disk encryption has it, and the
// TPM its volume key is sealed to, cached under .cache/second-stage/encrypted-<key>/:
//
//   disk.img   GPT (sgdisk)
//   └─ p1  LUKS2 (UUID LUKS_UUID; key slot 0 the passphrase, key slot 1 the systemd-tpm2 token)
//          └─ LVM: VG debian-vg, LV root (the names Debian's installer gives them)
//               └─ ext4 (UUID ENCRYPTED_ROOT_UUID): the final root (second_stage.ts buildFinalRoot)
//   tpm/       swtpm's state: the TPM whose storage seed the token's key is sealed under
//
// This machine's kernel has no device-mapper, so the disk is filled by a provisioning boot: the
// Debian kernel the tests boot, with an initramfs of the second stage's own Debian tree
// (cryptsetup, lvm2, e2fsprogs, systemd-cryptenroll) whose /provision script formats, opens,
// fills and closes the volume, then enrolls the TPM through the kernel's TPM driver. The token
// holds a signed PCR 11 policy (--tpm2-public-key, PCR 11, no PCR bound otherwise): it unseals
// only under a UKI whose .pcrsig the PCR key signed for the PCR 11 the stub and the second
// stage's systemd-pcrphase leave behind.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { CACHE, requireTool, ROOT, run } from "../toolchain/tools.mjs";
import { bootQemu } from "./boot.ts";
import { testKey } from "./images.ts";
import { fetchKernel } from "./kernel.mjs";
import {
  buildFinalRoot,
  copyModules,
  copyTree,
  keyOf,
  SECOND_STAGE_MODULES,
  secondStageTree,
  treeCpio,
} from "./second_stage.ts";

/** The LUKS2 header's UUID (rd.luks.uuid= names it). */
export const LUKS_UUID = "5eced0e5-0000-4000-8000-00000000c0de";
/** The root file system's UUID in the logical volume. */
const ENCRYPTED_ROOT_UUID = "f1a1f1a1-0000-4000-8000-0000000000e2";
/** The logical volume of the root, as udev names it under /dev/mapper. */
const ENCRYPTED_ROOT_DEVICE = "/dev/mapper/debian--vg-root";
/**
 * Key slot 0's passphrase: the one a person would type. Known to the tests, which check that no
 * boot ever shows it; PBKDF2 with few iterations, since the provisioning boot runs under TCG.
 */
export const LUKS_PASSPHRASE = "storage-init test passphrase";

/**
 * What the second stage needs on the kernel command line to boot this disk: systemd-cryptsetup
 * unlocks rd.luks.uuid= with the TPM and never asks for the passphrase (headless); LVM's udev
 * rules activate the volume group; root= is its root volume, mounted read-write.
 */
export const UNLOCK_ARGS = `rd.luks.uuid=${LUKS_UUID} rd.luks.options=tpm2-device=auto,headless=true root=${ENCRYPTED_ROOT_DEVICE} rw`;

/** The disk's size: the LUKS2 header (16 MiB), the LVM metadata and an ext4 with room for the final root. */
const DISK_BYTES = 768 * 2 ** 20;

/** The provisioning boot's script, the initramfs's init (rdinit=/provision). */
const PROVISION = `#!/bin/sh
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# lvm2 and cryptsetup make their device nodes themselves: no udev runs here.
export DM_DISABLE_UDEV=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
say() { echo "<5>PROVISION $*" > /dev/kmsg; }
trap 'say FAILED; sync; echo o > /proc/sysrq-trigger' EXIT
modprobe -a virtio_pci virtio_blk dm_crypt xts aesni_intel ext4
for i in $(seq 100); do
  [ -b /dev/vda1 ] && [ -b /dev/vdb ] && [ -c /dev/tpmrm0 ] && break
  sleep 0.1
done
pass=$(cat /provision.d/passphrase)
printf %s "$pass" | cryptsetup luksFormat --batch-mode --type luks2 --uuid ${LUKS_UUID} \\
  --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file=- /dev/vda1
printf %s "$pass" | cryptsetup open --key-file=- /dev/vda1 cryptroot
pvcreate -q /dev/mapper/cryptroot
vgcreate -q debian-vg /dev/mapper/cryptroot
lvcreate -q -y -n root -l 100%FREE debian-vg
mkfs.ext4 -q -L root -U ${ENCRYPTED_ROOT_UUID} /dev/debian-vg/root
mkdir -p /mnt/src /mnt/dst
mount -o ro,noload /dev/vdb /mnt/src
mount /dev/debian-vg/root /mnt/dst
cp -a /mnt/src/. /mnt/dst/
say "COPIED $(df -k /mnt/dst | tail -1)"
umount /mnt/dst /mnt/src
vgchange -q -an debian-vg
cryptsetup close cryptroot
PASSWORD="$pass" systemd-cryptenroll --tpm2-device=/dev/tpmrm0 --tpm2-public-key=/provision.d/pcr.pem \\
  --tpm2-public-key-pcrs=11 --tpm2-pcrs= /dev/vda1
say "TOKENS $(cryptsetup luksDump /dev/vda1 | grep -c systemd-tpm2)"
sync
trap - EXIT
say DONE
echo o > /proc/sysrq-trigger
sleep 60
`;

/** The key that signs the PCR 11 policy of a UKI (buildUki's `pcr`): PEM files. */
export function pcrKey(): { privateKey: string; publicKey: string } {
  const { key, cert } = testKey("pcr");
  const publicKey = join(CACHE, "keys", "pcr.pub.pem");
  // Made again when the certificate is newer; written whole (renamed into place), since test
  // workers ask for it at the same time.
  if (!existsSync(publicKey) || statSync(publicKey).mtimeMs < statSync(cert).mtimeMs) {
    writeFileSync(`${publicKey}.${process.pid}`, run("openssl", ["x509", "-in", cert, "-pubkey", "-noout"]));
    renameSync(`${publicKey}.${process.pid}`, publicKey);
  }
  return { privateKey: key, publicKey };
}

/** The disk and the TPM as built: copy `tpm` for each boot (a boot changes the TPM's state). */
export interface EncryptedRoot {
  disk: string;
  tpm: string;
}

/**
 * A TPM for one boot of `root`: its sealed state copied into `dir`/tpm (a boot changes a TPM's
 * state; the cached one stays as the volume was sealed to it). Returns that folder.
 */
export function tpmFor(root: EncryptedRoot, dir: string): string {
  const tpm = join(dir, "tpm");
  rmSync(tpm, { recursive: true, force: true });
  cpSync(root.tpm, tpm, { recursive: true });
  return tpm;
}

/** Builds (or reuses) the encrypted disk and its TPM. */
export async function buildEncryptedRoot(): Promise<EncryptedRoot> {
  const kernel = fetchKernel("x86-64");
  const tree = secondStageTree();
  const finalRoot = buildFinalRoot();
  const key = pcrKey();
  const inputs = [basename(tree), basename(finalRoot), kernel.version, readFileSync(key.publicKey, "utf8")];
  const source = readFileSync(join(ROOT, "qemu", "encrypted_root.ts"), "utf8");
  const dir = join(CACHE, "second-stage", `encrypted-${keyOf(...inputs, source)}`);
  const built = { disk: join(dir, "disk.img"), tpm: join(dir, "tpm") };
  if (existsSync(join(dir, ".complete"))) return built;
  requireTool("sgdisk");
  requireTool("cpio");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(built.tpm, { recursive: true });
  const t0 = performance.now();
  writeFileSync(built.disk, "");
  run("truncate", ["-s", String(DISK_BYTES), built.disk]);
  run("sgdisk", ["-n", "1:0:0", "-t", "1:8309", "-c", "1:root", built.disk]);
  // The provisioning initramfs: the second stage's tree with its modules, the script and its inputs.
  const work = join(dir, "provision.tree");
  copyTree(tree, work);
  copyModules(work, kernel.modulesDir, kernel.version, SECOND_STAGE_MODULES);
  writeFileSync(join(work, "provision"), PROVISION, { mode: 0o755 });
  mkdirSync(join(work, "provision.d"));
  writeFileSync(join(work, "provision.d", "passphrase"), LUKS_PASSPHRASE);
  writeFileSync(join(work, "provision.d", "pcr.pem"), readFileSync(key.publicKey));
  const cpio = join(dir, "provision.cpio");
  treeCpio(work, cpio);
  rmSync(work, { recursive: true, force: true });
  console.log("encrypted root: provisioning boot (LUKS2, LVM, ext4, the final root copied in, TPM2 enrolled)");
  const r = await bootQemu({
    kernel: kernel.vmlinuz,
    initrd: cpio,
    append: "rdinit=/provision",
    memory: 1536,
    drives: [
      { file: built.disk, if: "virtio", readonly: false },
      { file: finalRoot, if: "virtio" },
    ],
    tpm: built.tpm,
    timeoutMs: 600000,
  });
  rmSync(cpio, { force: true });
  if (!/PROVISION DONE/.test(r.output) || !/PROVISION TOKENS 1\b/.test(r.output))
    throw new Error(`the provisioning boot did not finish:\n${r.output.slice(-4000)}`);
  writeFileSync(join(dir, ".complete"), "");
  console.log(
    `encrypted root: built in ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.output.match(/PROVISION COPIED (.*)/)?.[1] ?? ""})`,
  );
  return built;
}
