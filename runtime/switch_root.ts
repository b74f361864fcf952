/**
 * Switching into the new root the way systemd's switch-root.c and u-root do it: move the API
 * mounts into the new root, delete the initramfs's contents without crossing into other file
 * systems (it is rootfs, which cannot be unmounted and would otherwise keep its memory), move
 * the new root onto /, chroot into it, and pick the init to execute.
 */
import type { Log } from "./log.js";
import { fileType, FileType, MountFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

/** Mounts carried into the new root, in order. */
export const MOVE_MOUNTS = ["/dev", "/proc", "/sys", "/run"];

/** Where the kernel and systemd look for init when `init=` is not given. */
export const DEFAULT_INITS = [
  "/usr/lib/systemd/systemd",
  "/lib/systemd/systemd",
  "/sbin/init",
  "/etc/init",
  "/bin/init",
];

/** Removes everything under `dir` that lives on device `dev`, except `keep`. Returns the count. */
export function deleteTree(k: Kernel, dir: string, devMajor: number, devMinor: number, keep: string): number {
  let n = 0;
  for (const e of k.readdir(dir)) {
    const path = (dir === "/" ? "" : dir) + "/" + e.name;
    if (path === keep) continue;
    const st = k.lstat(path);
    if (st.devMajor !== devMajor || st.devMinor !== devMinor) continue; // another file system: a mount point
    if (fileType(st) === FileType.DIR) {
      n += deleteTree(k, path, devMajor, devMinor, keep);
      k.rmdir(path);
    } else k.unlink(path);
    n++;
  }
  return n;
}

export function switchRoot(k: Kernel, log: Log, newRoot: string): void {
  for (const m of MOVE_MOUNTS) k.mount(m, newRoot + m, "", MountFlags.MOVE, "");
  const root = k.stat("/");
  const removed = deleteTree(k, "/", root.devMajor, root.devMinor, newRoot);
  log.debug("freed the initramfs: " + removed + " entries");
  k.chdir(newRoot);
  k.mount(newRoot, "/", "", MountFlags.MOVE, "");
  k.chroot(".");
  k.chdir("/");
}

/** True when `path` is a regular file with an execute bit. */
function isExecutable(k: Kernel, path: string): boolean {
  try {
    const st = k.stat(path);
    return fileType(st) === FileType.REG && (st.mode & 0o111) !== 0;
  } catch (e) {
    return false;
  }
}

/** The init to run in the (already switched) root, or undefined with what was tried. */
export function chooseInit(k: Kernel, requested: string | undefined): { path?: string; tried: string[] } {
  const candidates = requested !== undefined ? [requested] : DEFAULT_INITS;
  for (const c of candidates) if (isExecutable(k, c)) return { path: c, tried: candidates };
  return { tried: candidates };
}

/** argv for the next init: systemd learns it was switched into; others get the kernel's extra words. */
export function initArgv(path: string, extra: string[]): string[] {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const argv = [path];
  if (base === "systemd") argv.push("--switched-root", "--system");
  for (const a of extra) argv.push(a);
  return argv;
}
