/**
 * The root device from the DDI's partitions: each attached to a read-only loop device, the
 * verity superblock read and checked against the partitions, and the dm-verity device `root`
 * created over them; then the root mounted, with a read error that dm-verity caused explained
 * as tampering.
 */
import { errnoOf, errorText, InitError, ParseError, withContext } from "../lib/errors.js";
import { Errno, errnoName, isErrno } from "../syscalls/errno.js";
import { closeQuietly, withReader } from "../syscalls/files.js";
import { AtFlags, KeyringId, MountFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import type { DdiLayout, DdiVerity } from "./ddi.js";
import { EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_SIZE, erofsFitRefusal, parseErofsSuperblock } from "./erofs.js";
import type { ErofsSuperblock } from "./erofs.js";
import { createReadOnlyDevice, DmFlags, dmStatus, removeDevice, removeDeviceQuietly } from "./devmapper.js";
import type { DmTarget } from "./devmapper.js";
import type { GptPartition } from "./gpt.js";
import type { Log } from "./log.js";
import { attachLoop, LoopFlags } from "./loop.js";
import type { LoopDevice } from "./loop.js";
import type { ModuleGroup } from "./module_table.js";
import type { ModuleLoader } from "./modules.js";
import { mkdirAll } from "./mount.js";
import { checkVerityGeometry, parseVeritySuperblock, VERITY_SUPERBLOCK_SIZE, verityParams } from "./verity.js";
import type { VeritySuperblock } from "./verity.js";
import { signatureName } from "./verity_sig.js";
import { signerRefusal } from "./pkcs7.js";

/** The dm device name of the verified root. */
export const VERITY_NAME = "root";

/**
 * What the command line says of verification: dm-verity's flags, whether digests under 256 bits
 * are taken, and whether a signature must verify (storage_init.root_policy=signed). When it need
 * not, the root hash is pinned by the signed command line and a signature the kernel refuses is
 * warned of, the table then loaded without it.
 */
export interface VerityPolicy {
  options: string[];
  allowWeakHash: boolean;
  signatureRequired: boolean;
  /** The fingerprints of the certificates whose signatures are taken (Config.certificateFingerprints); empty for any. */
  certificates: string[];
}

export interface RootDevice {
  path: string;
  /** True when dm-verity checks every block read from it. */
  verified: boolean;
  /** The root hash dm-verity checks against ("" when not verified). */
  rootHash: string;
  /** True when the kernel accepted the signature of the root hash (the table names it). */
  signed: boolean;
  /** The SHA-256 of the certificate that made that signature, computed from it ("" when not signed). */
  signer: string;
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
    return { path: rootLoop.path, verified: false, rootHash: "", signed: false, signer: "", held: [rootLoop.fd] };
  }
  const held = [rootLoop.fd];
  const made = verityOrRelease(k, log, loader, { ddiFile, ddi, verity, policy, rootLoop, held });
  return { path: made.path, verified: true, rootHash: verity.rootHash, signed: made.signed, signer: made.signer, held };
}

/** What setUpVerity() works on: the DDI, its verity partition and policy, and the loop fds held. */
interface VerityJob {
  ddiFile: string;
  ddi: DdiLayout;
  verity: DdiVerity;
  policy: VerityPolicy;
  rootLoop: LoopDevice;
  /** Loop device fds; setUpVerity() adds the verity partition's. */
  held: number[];
}

/** The verified device setUpVerity() made: its path, whether the table names a signature the kernel accepted, and its signer's fingerprint. */
interface VerityDevice {
  path: string;
  signed: boolean;
  signer: string;
}

/**
 * setUpVerity(), or on failure the loop devices released (autoclear: they go with their last
 * descriptor), so that another DDI can be tried next. What the catch block reads is a
 * parameter, not a local of the function that has the try (porffor: try-catch-stale-locals).
 */
function verityOrRelease(k: Kernel, log: Log, loader: ModuleLoader, job: VerityJob): VerityDevice {
  try {
    return setUpVerity(k, log, loader, job);
  } catch (e) {
    closeQuietly(k, job.held);
    throw e;
  }
}

/** What the kernel's errno on a rejected root hash signature means (drivers/md/dm-verity-verify-sig.c). */
function signatureErrnoMeaning(errno: number): string {
  if (errno === Errno.ENOKEY) return "no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it";
  if (errno === Errno.EKEYREJECTED) return "it does not verify: not over this root hash, or altered";
  if (errno === Errno.EINVAL) return "its signature value does not decode, as when it was corrupted";
  if (errno === Errno.EBADMSG) return "it is not a well-formed PKCS#7 message";
  if (errno === Errno.ENOPKG) return "it uses an algorithm this kernel lacks";
  if (errno === Errno.EKEYEXPIRED) return "the key that made it has expired";
  return "the kernel refused it";
}

/** Description of the `user` key holding a root hash signature for dm-verity to find. */
function signatureKeyDescription(rootHash: string): string {
  return "storage-init:root-verity:" + rootHash.slice(0, 32);
}

/** The module group holding the kernel's implementation of `algorithm`, one digestBytes() takes (toolchain/module_closure.ts). */
export function hashModuleGroup(algorithm: string): ModuleGroup {
  return ("hash-" + algorithm) as ModuleGroup;
}

/**
 * dm-verity over the root loop device and a loop device of the verity partition (its fd is
 * added to `job.held`); returns the verified device. With a signature, the PKCS#7 goes to
 * the thread keyring as a `user` key and the table names it (root_hash_sig_key_desc): the
 * kernel verifies it against its trusted keyrings while it loads the table, or refuses the
 * table. The key is invalidated once the table is loaded or refused. A refused signature ends
 * here when the policy requires one; otherwise roothash= vouches for the root: one warning, and
 * the table loaded without the signature.
 */
function setUpVerity(k: Kernel, log: Log, loader: ModuleLoader, job: VerityJob): VerityDevice {
  const { ddiFile, ddi, verity, policy, rootLoop, held } = job;
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
  held.push(verityLoop.fd);
  loader.loadGroup("verity");
  // The hash's implementation: a module when the kernel does not have it built in.
  loader.loadGroup(hashModuleGroup(sb.algorithm));
  const sig = verity.signature;
  const made = { path: "", failed: false, error: undefined as unknown };
  let signed = false;
  const signer = { fingerprint: "" };
  const notTaken = sig === undefined ? "" : signerRefusal(sig.pkcs7, sig.fingerprint, policy.certificates, signer);
  if (sig !== undefined && signer.fingerprint !== "") sig.fingerprint = signer.fingerprint;
  if (sig !== undefined && notTaken !== "") {
    const refused = "the " + signatureName(sig) + " is not taken: " + notTaken;
    if (policy.signatureRequired) throw new InitError(refused);
    log.warn(refused + "; roothash= pins the root: activating it without the signature");
  } else if (sig !== undefined) {
    const desc = signatureKeyDescription(verity.rootHash);
    const keyId = k.addKey("user", desc, sig.pkcs7, KeyringId.THREAD);
    const options = policy.options.slice();
    options.push("root_hash_sig_key_desc");
    options.push(desc);
    createDevice(k, verityTarget(log, job, verityLoop, sb, hashStart, options), made);
    dropKey(k, keyId);
    const errno = made.failed ? errnoOf(made.error) : 0;
    if (!made.failed) signed = true;
    else if (errno !== 0 && errno !== Errno.EBUSY) {
      const refused =
        "the kernel refused the " + signatureName(sig) + ": " + errnoName(errno) + ", " + signatureErrnoMeaning(errno);
      if (policy.signatureRequired) throw new InitError(refused, errno);
      // The root hash is pinned by the signed command line: the signature adds nothing it does
      // not already guarantee, and a machine without the signer's key still boots the image.
      log.warn(refused + "; roothash= pins the root: activating it without the signature");
      made.failed = false;
    }
    if (made.failed) throw made.error;
  }
  if (!signed) {
    createDevice(k, verityTarget(log, job, verityLoop, sb, hashStart, policy.options), made);
    if (made.failed) throw made.error;
  }
  try {
    checkErofsFits(k, made.path, sb.dataBlocks * sb.dataBlockSize);
  } catch (e) {
    removeDeviceQuietly(k, VERITY_NAME);
    throw e;
  }
  log.info(
    "dm-verity " +
      made.path +
      " (" +
      sb.algorithm +
      ", " +
      sb.dataBlocks +
      " blocks of " +
      sb.dataBlockSize +
      ") over " +
      rootLoop.path +
      " + " +
      verityLoop.path +
      (signed && sig !== undefined ? "; the kernel accepted the " + signatureName(sig) : ""),
  );
  return { path: made.path, signed, signer: signed ? signer.fingerprint : "" };
}

/** The dm-verity target over the job's root loop device and `verityLoop`, with `options`. */
function verityTarget(
  log: Log,
  job: VerityJob,
  verityLoop: LoopDevice,
  sb: VeritySuperblock,
  hashStart: number,
  options: string[],
): DmTarget {
  const params = verityParams(
    job.rootLoop.major + ":" + job.rootLoop.minor,
    verityLoop.major + ":" + verityLoop.minor,
    sb,
    hashStart,
    job.verity.rootHash,
    options,
  );
  log.debug("verity table: " + params);
  return { start: 0, length: (sb.dataBlocks * sb.dataBlockSize) / 512, type: "verity", params };
}

/** The file system's own size, read through dm-verity, must fit the `verified` bytes (erofsFitRefusal()). */
function checkErofsFits(k: Kernel, path: string, verified: number): void {
  const refusal = erofsFitRefusal(readErofsSuperblock(k, path), verified);
  if (refusal !== "") throw new ParseError(refusal);
}

/**
 * Creates the verified device `root` over `target`, its path or failure in `out` rather than
 * thrown: the key is to be dropped either way (porffor: try-catch-stale-locals, `out` being a
 * parameter).
 */
function createDevice(k: Kernel, target: DmTarget, out: { path: string; failed: boolean; error: unknown }): void {
  try {
    out.path = createReadOnlyDevice(k, VERITY_NAME, "STORAGE_INIT-VERITY-" + VERITY_NAME, target, {
      status: "V",
      meaning: "verified",
    }).path;
  } catch (e) {
    out.failed = true;
    out.error = e;
  }
}

/** Invalidates the signature's key: dm-verity read it while loading the table. */
function dropKey(k: Kernel, id: number): void {
  try {
    k.invalidateKey(id);
  } catch (e) {
    // The key holds only a public signature, and goes with this thread's keyring at execve.
  }
}

/** An EIO from the verified device whose status is `C`: dm-verity refused blocks, and the line says so. */
function explainEio(k: Kernel, e: unknown): unknown {
  if (!isErrno(e, Errno.EIO) || dmStatus(k, VERITY_NAME) !== "C") return e;
  return new InitError(
    errorText(e) + ": dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)",
    Errno.EIO,
  );
}

/**
 * Executes the root's init (after the switch); an EIO while the kernel reads it, with the
 * verity status `C`, is a block of the init that does not match roothash=: the line says so.
 * The catch reads only parameters (porffor: try-catch-stale-locals).
 */
export function execInit(k: Kernel, path: string, argv: string[], envp: string[]): never {
  try {
    return k.execve(path, argv, envp);
  } catch (e) {
    throw explainEio(k, e);
  }
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
  root.held = [];
}

/** Where a second stage's layers are while the overlay is made: /run, which moves into it. */
export const SECOND_STAGE_LOWER = "/run/storage-init/lower";
export const SECOND_STAGE_UPPER = "/run/storage-init/upper";

/**
 * Makes the root mounted on `target` (read-only erofs) a second stage's: the lower layer of an
 * overlay whose upper layer is a tmpfs, mounted on `target` in its place, as a cpio initrd is
 * writable where systemd's initrd writes (/etc, /var, /run's bind mounts). The layers are then
 * detached (the overlay holds them): the second stage sees only its root.
 */
export function stackOverlay(k: Kernel, loader: ModuleLoader, target: string): void {
  loader.loadGroup("overlay");
  mkdirAll(k, SECOND_STAGE_LOWER, 0o700);
  k.mount(target, SECOND_STAGE_LOWER, "", MountFlags.MOVE, "");
  mkdirAll(k, SECOND_STAGE_UPPER, 0o700);
  k.mount("tmpfs", SECOND_STAGE_UPPER, "tmpfs", MountFlags.NOSUID | MountFlags.NODEV, "mode=0755");
  k.mkdir(SECOND_STAGE_UPPER + "/upper", 0o755);
  k.mkdir(SECOND_STAGE_UPPER + "/work", 0o755);
  k.mount(
    "overlay",
    target,
    "overlay",
    0,
    "lowerdir=" +
      SECOND_STAGE_LOWER +
      ",upperdir=" +
      SECOND_STAGE_UPPER +
      "/upper,workdir=" +
      SECOND_STAGE_UPPER +
      "/work",
  );
  k.umount(SECOND_STAGE_LOWER, AtFlags.MNT_DETACH);
  k.umount(SECOND_STAGE_UPPER, AtFlags.MNT_DETACH);
}

/**
 * Lets the root's devices go by themselves once its file system is unmounted, as the second
 * stage's systemd does when it switches into the final root: the dm-verity device is marked for
 * deferred removal (the loop devices are already autoclear).
 */
export function releaseWhenUnmounted(k: Kernel, root: RootDevice): void {
  if (root.verified) removeDevice(k, VERITY_NAME, DmFlags.DEFERRED_REMOVE);
}

/**
 * Undoes setUpRootDevice() and mountRoot() on a root that was not taken: unmounts it from
 * `mountedOn` ("" when it was not mounted), removes the dm-verity device and closes the loop
 * devices' fds (they go with their last user: autoclear), so that the next DDI can be tried.
 * Quiet: it runs on a path that is already failing; what is left is logged.
 */
export function releaseRoot(k: Kernel, log: Log, root: RootDevice, mountedOn: string): void {
  if (mountedOn !== "") {
    try {
      k.umount(mountedOn, 0);
    } catch (e) {
      log.warn("cannot unmount " + mountedOn + " to try another DDI: " + errorText(e));
    }
  }
  if (root.verified) removeDeviceQuietly(k, VERITY_NAME);
  closeQuietly(k, root.held);
  root.held = [];
}
