/**
 * Switching into the new root the way systemd's switch-root.c and u-root do it: move the API
 * mounts into the new root, delete the initramfs's contents without crossing into other file
 * systems (it is rootfs, which cannot be unmounted and would otherwise keep its memory), move
 * the new root onto /, chroot into it, and pick the init to execute.
 */
import { utf8Encode } from "../lib/bytes.js";
import { errorText } from "../lib/errors.js";
import { fileType, FileType, MountFlags, OpenFlags } from "../syscalls/kernel.js";
import type { DirEntry, Kernel } from "../syscalls/kernel.js";
import type { Log } from "./log.js";
import { mkdirExisting } from "./mount.js";

/** Mounts carried into the new root, in order. */
export const MOVE_MOUNTS = ["/dev", "/proc", "/sys", "/run"];

/** What deleteTree did: entries removed, and those it could not remove, with the first reason. */
export interface Freed {
  removed: number;
  failed: number;
  firstError: string;
  /** Whether systemd-stub's /.extra (credentials, sysexts, confexts) was among them. */
  extra: boolean;
}

function failedOne(freed: Freed, e: unknown): void {
  if (freed.failed === 0) freed.firstError = errorText(e);
  freed.failed++;
}

/**
 * Removes what it can under `dir` that lives on device `dev`, except `keep`, never crossing into
 * another file system; what it cannot remove is counted in `freed`, not thrown.
 */
export function deleteTree(
  k: Kernel,
  dir: string,
  devMajor: number,
  devMinor: number,
  keep: string,
  freed: Freed,
): void {
  let entries: DirEntry[] = [];
  try {
    entries = k.readdir(dir);
  } catch (e) {
    failedOne(freed, e);
  }
  for (const e of entries) {
    const path = (dir === "/" ? "" : dir) + "/" + e.name;
    if (path === keep) continue;
    if (path === "/.extra") freed.extra = true;
    try {
      const st = k.lstat(path);
      if (st.devMajor === devMajor && st.devMinor === devMinor) {
        if (fileType(st) === FileType.DIR) {
          deleteTree(k, path, devMajor, devMinor, keep, freed);
          k.rmdir(path);
        } else k.unlink(path);
        freed.removed++;
      } // else another file system: a mount point, left alone
    } catch (err) {
      failedOne(freed, err);
    }
  }
}

/** Where systemd-stub puts what it read from the ESP for the initrd: credentials, global credentials, sysexts, confexts, the PCR signature and its key. */
export const STUB_EXTRA = "/.extra";
/** The PCR 11 signature and its public key: systemd 252 and 254 look for them in /run/systemd/. */
export const PCR_FILES = ["tpm2-pcr-signature.json", "tpm2-pcr-public-key.pem"];
/** /.extra's depth: its files, and those of its directories (credentials/, sysext/, ...). */
const EXTRA_DEPTH = 2;

/** Copies the regular file `from` to the new file `to`, with `mode`. */
function copyFile(k: Kernel, from: string, to: string, mode: number): void {
  const src = k.open(from, OpenFlags.RDONLY | OpenFlags.CLOEXEC);
  const dst = k.open(to, OpenFlags.WRONLY | OpenFlags.CREAT | OpenFlags.TRUNC | OpenFlags.CLOEXEC, mode);
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = k.read(src, buf);
    if (n === 0) break;
    let done = 0;
    while (done < n) done += k.write(dst, buf.subarray(done, n));
  }
  k.close(src);
  k.close(dst);
}

/** Copies the directories and regular files under `from` into `to` (made), `depth` levels deep; returns the files copied. */
function copyTree(k: Kernel, from: string, to: string, depth: number): number {
  k.mkdir(to, 0o700);
  let n = 0;
  for (const e of k.readdir(from)) {
    const st = k.lstat(from + "/" + e.name);
    const type = fileType(st);
    if (type === FileType.REG) {
      copyFile(k, from + "/" + e.name, to + "/" + e.name, st.mode & 0o7777);
      n++;
    } else if (type === FileType.DIR && depth > 1) n += copyTree(k, from + "/" + e.name, to + "/" + e.name, depth - 1);
  }
  return n;
}

/**
 * Hands systemd-stub's outputs to a second stage, the initrd they were made for (the stub
 * measured them; its systemd checks the credentials and applies the extensions under its own
 * policy): STUB_EXTRA copied into `newRoot` (an overlay whose upper layer is a tmpfs, freed with
 * it), and PCR_FILES also into /run/systemd/, where systemd 252 and 254 look (/run moves into
 * `newRoot`). Returns the files copied; 0 without STUB_EXTRA.
 */
export function handOverExtra(k: Kernel, newRoot: string): number {
  if (modeOf(k, STUB_EXTRA, FileType.DIR) < 0) return 0;
  const n = copyTree(k, STUB_EXTRA, newRoot + STUB_EXTRA, EXTRA_DEPTH);
  for (const f of PCR_FILES) {
    const mode = modeOf(k, STUB_EXTRA + "/" + f, FileType.REG);
    if (mode < 0) continue;
    mkdirExisting(k, "/run/systemd", 0o755);
    copyFile(k, STUB_EXTRA + "/" + f, "/run/systemd/" + f, mode);
  }
  return n;
}

/** The permission bits of `path` when it is of `type` (not followed if a symlink), else -1. */
function modeOf(k: Kernel, path: string, type: number): number {
  try {
    const st = k.lstat(path);
    return fileType(st) === type ? st.mode & 0o7777 : -1;
  } catch (e) {
    return -1;
  }
}

/** statfs f_type of the file systems an initramfs is (uapi linux/magic.h). */
export const FsMagic = { RAMFS: 0x858458f6, TMPFS: 0x01021994 };

/**
 * Moves the API mounts into `newRoot`, frees the initramfs, moves `newRoot` onto / and chroots
 * into it. The initramfs is emptied only when / really is one (ramfs or tmpfs) and this is PID 1,
 * as systemd and u-root check; freeing it is best effort: what cannot be removed is logged.
 */
export function switchRoot(k: Kernel, log: Log, newRoot: string, extraHandedOver: boolean): void {
  for (const m of MOVE_MOUNTS) k.mount(m, newRoot + m, "", MountFlags.MOVE, "");
  const type = k.statfsType("/");
  if (k.getpid() !== 1 || (type !== FsMagic.RAMFS && type !== FsMagic.TMPFS)) {
    log.warn(
      "/ is not this PID 1's initramfs (file system type 0x" + type.toString(16) + "): its contents are left alone",
    );
  } else {
    const root = k.stat("/");
    const freed: Freed = { removed: 0, failed: 0, firstError: "", extra: false };
    deleteTree(k, "/", root.devMajor, root.devMinor, newRoot, freed);
    // Unverified input from the ESP: the root is what roothash= pins, and nothing else.
    if (freed.extra && !extraHandedOver)
      log.notice("/.extra (systemd-stub's credentials and extensions from the ESP) is not handed over: unverified");
    if (freed.failed > 0)
      log.warn("freeing the initramfs: " + freed.failed + " entries left (" + freed.firstError + ")");
    else log.debug("freed the initramfs: " + freed.removed + " entries");
  }
  k.chdir(newRoot);
  k.mount(newRoot, "/", "", MountFlags.MOVE, "");
  k.chroot(".");
  k.chdir("/");
}

/** Whether the init at `path` is systemd (its argv and state differ). */
export function isSystemd(path: string): boolean {
  return path.slice(path.lastIndexOf("/") + 1) === "systemd";
}

/**
 * argv for the next init: systemd learns it was switched into, and where its serialized state
 * is (`stateFd`, or -1 for none); others get the kernel's extra words as they are.
 */
export function initArgv(path: string, extra: string[], stateFd: number): string[] {
  const argv = [path];
  if (isSystemd(path)) {
    argv.push("--switched-root", "--system");
    if (stateFd >= 0) argv.push("--deserialize=" + stateFd);
  }
  for (const a of extra) argv.push(a);
  return argv;
}

/** Microseconds as decimal digits, exactly (no exponent, whatever the number's size). */
function usec(ms: number): string {
  const us = Math.floor(ms * 1000);
  const low = String(us % 1000000);
  const high = Math.floor(us / 1000000);
  return (high > 0 ? String(high) + "000000".slice(low.length) : "") + low;
}

/**
 * What systemd reads from `--deserialize=<fd>` when it starts in the new root: the manager
 * section, here only `initrd-timestamp=<CLOCK_REALTIME µs> <CLOCK_MONOTONIC µs>` of the
 * initrd's start (src/core/manager-serialize.c; systemd in an initrd serializes the same), so that
 * `systemd-analyze` reports the initrd's time as "(initrd)".
 */
export function systemdState(startRealtimeMs: number, startMonotonicMs: number): string {
  return "initrd-timestamp=" + usec(startRealtimeMs) + " " + usec(startMonotonicMs) + "\n";
}

/**
 * systemd's state in a memfd it inherits, for an initrd that started at monotonic `startMs`;
 * -1 when none could be made (systemd then starts without the initrd's time: logged, not fatal).
 */
export function systemdStateFd(k: Kernel, log: Log, startMs: number): number {
  const realtime = k.realtimeMs() - (k.monotonicMs() - startMs);
  try {
    return k.memfd("storage-init-state", utf8Encode(systemdState(realtime, startMs)));
  } catch (e) {
    log.warn("systemd gets no initrd timestamp: " + errorText(e));
    return -1;
  }
}
