/**
 * Mounting: the API file systems PID 1 needs first, and a mount helper that treats
 * "already there" as success (steps are idempotent).
 */
import { splitText } from "../lib/text.js";
import { Errno, isErrno } from "../syscalls/errno.js";
import { MountFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

export interface MountSpec {
  source: string;
  target: string;
  fstype: string;
  flags: number;
  data: string;
}

/**
 * The API file systems, in order. /run follows systemd's initrd interface
 * (docs/INITRD_INTERFACE.md): tmpfs, mode=755, nodev, nosuid, strictatime.
 */
export const API_MOUNTS: MountSpec[] = [
  {
    source: "proc",
    target: "/proc",
    fstype: "proc",
    flags: MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC,
    data: "",
  },
  {
    source: "sysfs",
    target: "/sys",
    fstype: "sysfs",
    flags: MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC,
    data: "",
  },
  {
    source: "devtmpfs",
    target: "/dev",
    fstype: "devtmpfs",
    flags: MountFlags.NOSUID | MountFlags.STRICTATIME,
    data: "mode=755",
  },
  {
    source: "tmpfs",
    target: "/run",
    fstype: "tmpfs",
    flags: MountFlags.NOSUID | MountFlags.NODEV | MountFlags.STRICTATIME,
    data: "mode=755",
  },
];

/** mkdir that treats an existing directory as success (checked first: a thrown EEXIST costs more). */
export function mkdirExisting(k: Kernel, path: string, mode: number): void {
  try {
    k.stat(path);
    return;
  } catch (e) {
    // Missing (or unreadable): try to create it below.
  }
  try {
    k.mkdir(path, mode);
  } catch (e) {
    if (!isErrno(e, Errno.EEXIST)) throw e;
  }
}

/** mkdir -p. */
export function mkdirAll(k: Kernel, path: string, mode: number): void {
  const parts = splitText(path, "/");
  let cur = "";
  for (const p of parts) {
    if (p === "") continue;
    cur += "/" + p;
    mkdirExisting(k, cur, mode);
  }
}

/** parent("/a/b") is "/a"; parent("/a") is "/". */
export function parentDir(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/**
 * True when `path` is the root of a mount: it lives on another device than its parent.
 * (Bind mounts of the same file system are not told apart; we never make those.)
 */
export function isMountPoint(k: Kernel, path: string): boolean {
  const st = k.stat(path);
  const up = k.stat(parentDir(path));
  return st.devMajor !== up.devMajor || st.devMinor !== up.devMinor;
}

/** Mounts `m`, creating its mount point; a mount already there counts as success. */
export function mountOnce(k: Kernel, m: MountSpec): void {
  mkdirAll(k, m.target, 0o755);
  if (isMountPoint(k, m.target)) return;
  k.mount(m.source, m.target, m.fstype, m.flags, m.data);
}

export function mountApiFilesystems(k: Kernel): void {
  for (const m of API_MOUNTS) mountOnce(k, m);
}
