// The cases both `storage-init check` (tests/check.test.ts) and the QEMU boots (tests/boot.test.ts)
// run: a disk variant of qemu/images.ts, a kernel command line, and what must come of it. The
// check's verdict is the boot's by construction: one row, both tests.
import { uuidFromHex } from "../lib/hex.js";
import type { DiskVariant } from "../qemu/images.js";

/** In a command line, the disk's own root hash. */
export const HASH = "HASH";

export interface VerdictCase {
  name: string;
  /** The test disk (qemu/images.ts), as the boots attach it (virtio). */
  disk: DiskVariant;
  /** The kernel command line; HASH stands for the disk's root hash. */
  cmdline: string;
  /**
   * Why the boot refuses: the end of its fatal line, and the check's `refused:` line (undefined
   * when the boot reaches the root and the check passes). A function of the disk's root hash.
   */
  reason?: (rootHash: string) => RegExp;
  /** The boot's fatal line is "failed to <doing>: <reason>". */
  doing?: string;
  /**
   * Where the check learns the same thing another way, its own line: it recomputes the root hash
   * dm-verity checks block by block as the boot reads, and it reads a copy of the ESP.
   */
  checkReason?: RegExp;
}

/** `s` as a RegExp matching it literally. */
export function literally(s: string): RegExp {
  return new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

const WRONG = "ab".repeat(32);

export const CASES: VerdictCase[] = [
  { name: "the DDI on the ESP, roothash= pinning it", disk: {}, cmdline: `roothash=${HASH}` },
  {
    name: "wrong roothash= (partition UUIDs do not match)",
    disk: {},
    cmdline: `roothash=${WRONG}`,
    doing: "open the DDI /EFI/storage-init/root.raw on /dev/vda1",
    reason: (h) =>
      literally(`root partition UUID ${uuidFromHex(h)} does not match roothash= (expected ${uuidFromHex(WRONG)})`),
  },
  {
    name: "no roothash= at all refuses an unverified root",
    disk: {},
    cmdline: "",
    doing: "read the kernel command line",
    reason: () =>
      literally(
        "no roothash= on the kernel command line: refusing to boot an unverified root (storage_init.root_policy=signed takes the root hash from a signed DDI; systemd.verity=0 boots without verification)",
      ),
  },
  {
    name: "a verity superblock that verifies less than the erofs root holds is refused, root hash or not",
    disk: { lowerVerityDataBlocks: 1 },
    cmdline: `roothash=${HASH}`,
    doing: "set up the root device",
    reason: () => /the erofs file system has \d+ bytes, but dm-verity verifies only \d+ of them/,
  },
  {
    name: "one flipped byte in the erofs superblock is stopped by dm-verity",
    disk: { flipErofsByte: 1030 },
    cmdline: `roothash=${HASH}`,
    doing: "set up the root device",
    reason: () =>
      /read the erofs superblock of \/dev\/dm-0: pread fd \d+ at 1024: EIO: dm-verity found blocks that do not match roothash= \(the image is corrupted or was tampered with\)/,
    checkReason: /the root hash recomputed over the data is not roothash=/,
  },
  {
    name: "the DDI is missing from the ESP",
    disk: { omitDdi: true },
    cmdline: `roothash=${HASH}`,
    doing: "open the DDI /EFI/storage-init/root.raw on /dev/vda1",
    reason: () => literally('stat "/run/storage-init/esp/EFI/storage-init/root.raw": ENOENT'),
    checkReason: /no DDI at \/EFI\/storage-init\/root\.raw/,
  },
  {
    name: "storage_init.second_stage=yes refuses a root that is not an initrd",
    disk: {},
    cmdline: `roothash=${HASH} storage_init.second_stage=yes`,
    doing: "mount the root /dev/dm-0",
    reason: () =>
      literally(
        "storage_init.second_stage=yes, but the image is not an initrd (no /etc/initrd-release, or it is empty)",
      ),
  },
  {
    name: "a second stage without /etc/machine-id is refused, naming it",
    disk: { secondStage: true, omitMachineId: true },
    cmdline: `roothash=${HASH}`,
    doing: "mount the root /dev/dm-0",
    reason: () => literally("the second stage has no /etc/machine-id (systemd needs one in an image; empty is enough)"),
  },
  {
    name: "a second stage whose init was changed after the root hash was taken is stopped by dm-verity",
    disk: { secondStage: true, flipInitByte: true },
    cmdline: `roothash=${HASH}`,
    doing: "switch root",
    reason: () =>
      literally(
        'execve "/sbin/init": EIO: dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)',
      ),
    checkReason: /the root hash recomputed over the data is not roothash=/,
  },
  {
    name: "storage_init.second_stage=no refuses a second stage",
    disk: { secondStage: true },
    cmdline: `roothash=${HASH} storage_init.second_stage=no`,
    doing: "mount the root /dev/dm-0",
    reason: () => literally("the image is an initrd (/etc/initrd-release), but storage_init.second_stage=no"),
  },
];

/** The boot's fatal line for the refused case `c` on a disk whose root hash is `rootHash`. */
export function fatalLine(c: VerdictCase, rootHash: string): RegExp {
  if (c.doing === undefined || c.reason === undefined) throw new Error(`${c.name}: the boot reaches the root`);
  return new RegExp(`^storage-init: failed to ${literally(c.doing).source}: ${c.reason(rootHash).source}$`);
}

/** The case named `name`. */
export function verdictCase(name: string): VerdictCase {
  const c = CASES.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no case ${name} in tests/cases.ts`);
  return c;
}
