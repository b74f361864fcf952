/**
 * The root device from the DDI's partitions: each attached to a read-only loop device, the
 * verity superblock read and checked against the partitions, and the dm-verity device `root`
 * created over them; then the root mounted, with a read error that dm-verity caused explained
 * as tampering.
 */
import { errorText, InitError, ParseError, withContext } from "../lib/errors.js";
import { Errno, isErrno } from "../syscalls/errno.js";
import { withReader } from "../syscalls/files.js";
import { MountFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import type { DdiLayout } from "./ddi.js";
import { EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_SIZE, parseErofsSuperblock } from "./erofs.js";
import type { ErofsSuperblock } from "./erofs.js";
import { createReadOnlyDevice, dmStatus } from "./devmapper.js";
import type { GptPartition } from "./gpt.js";
import type { Log } from "./log.js";
import { attachLoop, LoopFlags } from "./loop.js";
import type { LoopDevice } from "./loop.js";
import type { ModuleLoader } from "./modules.js";
import { mkdirAll } from "./mount.js";
import {
  checkVerityGeometry,
  hashModuleGroup,
  parseVeritySuperblock,
  VERITY_SUPERBLOCK_SIZE,
  verityParams,
} from "./verity.js";

/** The dm device name of the verified root. */
export const VERITY_NAME = "root";

/** What the command line says of verification: dm-verity's flags, and whether digests under 256 bits are taken. */
export interface VerityPolicy {
  options: string[];
  allowWeakHash: boolean;
}

export interface RootDevice {
  path: string;
  /** True when dm-verity checks every block read from it. */
  verified: boolean;
  /** Loop device fds to close once the root is mounted (the mount then holds the devices). */
  held: number[];
}

/** Attaches a DDI partition read-only; the loop device disappears with its last user. */
function attachPartition(k: Kernel, file: string, p: GptPartition, what: string): LoopDevice {
  try {
    return attachLoop(k, file, {
      offset: p.offset,
      size: p.size,
      flags: LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR | LoopFlags.DIRECT_IO,
      blockSize: 0,
    });
  } catch (e) {
    throw withContext("attach the " + what + " partition " + p.partGuid, e);
  }
}

/**
 * Sets up the root device of the DDI in `ddiFile`: dm-verity over two loop devices, or one loop
 * device when verification is disabled.
 */
export function setUpRootDevice(
  k: Kernel,
  log: Log,
  loader: ModuleLoader,
  ddiFile: string,
  ddi: DdiLayout,
  policy: VerityPolicy,
): RootDevice {
  loader.loadGroup("loop");
  const rootLoop = attachPartition(k, ddiFile, ddi.root, "root");
  log.debug("root partition " + ddi.root.partGuid + " on " + rootLoop.path);
  const verity = ddi.verity;
  if (verity === undefined) {
    log.warn("systemd.verity=0: mounting the root WITHOUT verification");
    return { path: rootLoop.path, verified: false, held: [rootLoop.fd] };
  }
  // A failure below leaves the loop devices attached: the boot ends in the failure action.
  const offset = verity.partition.offset;
  const sb = parseVeritySuperblock(withReader(k, ddiFile, (read) => read(offset, VERITY_SUPERBLOCK_SIZE)));
  const root = ddi.root;
  const hashStart = checkVerityGeometry(
    sb,
    root.size,
    verity.partition.size,
    verity.rootHash,
    k.pageSize(),
    policy.allowWeakHash,
  );
  const verityLoop = attachPartition(k, ddiFile, verity.partition, "root-verity");
  loader.loadGroup("verity");
  // The hash's implementation: a module when the kernel does not have it built in.
  loader.loadGroup(hashModuleGroup(sb.algorithm));
  const params = verityParams(
    rootLoop.major + ":" + rootLoop.minor,
    verityLoop.major + ":" + verityLoop.minor,
    sb,
    hashStart,
    verity.rootHash,
    policy.options,
  );
  log.debug("verity table: " + params);
  const target = { start: 0, length: (sb.dataBlocks * sb.dataBlockSize) / 512, type: "verity", params };
  const dev = createReadOnlyDevice(k, VERITY_NAME, "STORAGE_INIT-VERITY-" + VERITY_NAME, target, {
    status: "V",
    meaning: "verified",
  });
  log.info(
    "dm-verity " +
      dev.path +
      " (" +
      sb.algorithm +
      ", " +
      sb.dataBlocks +
      " blocks of " +
      sb.dataBlockSize +
      ") over " +
      rootLoop.path +
      " + " +
      verityLoop.path,
  );
  // The verity superblock's block count is not verified: lowered, it keeps the root hash and
  // leaves the end of the file system unverifiable, to read as I/O errors an attacker chose. The
  // file system's own size, read through dm-verity, is: it must fit what dm-verity verifies.
  const fs = readErofsSuperblock(k, dev.path);
  const verified = sb.dataBlocks * sb.dataBlockSize;
  if (fs.blocks * fs.blockSize > verified) {
    throw new ParseError(
      "erofs",
      "the erofs file system has " +
        fs.blocks * fs.blockSize +
        " bytes, but dm-verity verifies only " +
        verified +
        " of them",
    );
  }
  return { path: dev.path, verified: true, held: [rootLoop.fd, verityLoop.fd] };
}

/** An EIO from the verified device whose status is `C`: dm-verity refused blocks, and the line says so. */
function explainEio(k: Kernel, e: unknown): unknown {
  if (!isErrno(e, Errno.EIO) || dmStatus(k, VERITY_NAME) !== "C") return e;
  return new InitError(
    errorText(e) + ": dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)",
    Errno.EIO,
  );
}

/** The erofs superblock of the verified device (a read dm-verity checks). */
function readErofsSuperblock(k: Kernel, path: string): ErofsSuperblock {
  try {
    return parseErofsSuperblock(withReader(k, path, (read) => read(EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_SIZE)));
  } catch (e) {
    throw explainEio(k, withContext("read the erofs superblock of " + path, e));
  }
}

/**
 * Mounts the root device read-only on `target`. An EIO from a verified device whose status is
 * `C` means dm-verity refused blocks: the line says so. The loop fds are closed once the mount
 * (through dm-verity) holds the devices.
 */
export function mountRoot(
  k: Kernel,
  loader: ModuleLoader,
  root: RootDevice,
  target: string,
  fstype: string,
  flags: string,
): void {
  loader.loadGroup("erofs");
  mkdirAll(k, target, 0o755);
  try {
    k.mount(root.path, target, fstype, MountFlags.RDONLY, flags);
  } catch (e) {
    throw root.verified ? explainEio(k, e) : e;
  }
  for (const fd of root.held) k.close(fd);
}
