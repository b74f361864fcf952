/**
 * A `Kernel` over Node's fs: `storage-init check` reads images through it with the init's own
 * modules, and the native conformance suite runs each program once over this and once compiled
 * natively over LinuxKernel, the outputs to match. Only the calls an unprivileged process can
 * make are implemented; the rest fail with ENOSYS.
 */
import * as fs from "node:fs";
import { quote } from "../lib/quote.js";
import { KernelError } from "../syscalls/errno.js";
import type { DirEntry, Kernel, Stat } from "../syscalls/kernel.js";

const ENOSYS = 38;

function wrap<T>(op: string, args: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (typeof errno === "number") throw new KernelError(op, args, -errno);
    throw e;
  }
}

function toStat(s: fs.Stats): Stat {
  const major = (d: number) => Math.floor(d / 256) & 0xfff;
  const minor = (d: number) => (d & 0xff) | ((d >>> 12) & 0xfff00);
  return {
    mode: s.mode & 0xffff,
    size: s.size,
    rdevMajor: major(s.rdev),
    rdevMinor: minor(s.rdev),
    devMajor: major(s.dev),
    devMinor: minor(s.dev),
  };
}

/** The entries of `path`, at most max + 1 of them when `max` >= 0 (read one by one, as the shim stops). */
function listDir(path: string, max: number): fs.Dirent[] {
  const dir = fs.opendirSync(path);
  const out: fs.Dirent[] = [];
  try {
    for (let d = dir.readSync(); d !== null; d = dir.readSync()) {
      out.push(d);
      if (max >= 0 && out.length > max) break;
    }
  } finally {
    dir.closeSync();
  }
  return out;
}

function unsupported(op: string): never {
  throw new KernelError(op, "(not in the Node kernel)", ENOSYS);
}

export class NodeKernel implements Kernel {
  open(path: string, flags: number, mode: number = 0): number {
    return wrap("open", quote(path), () => fs.openSync(path, flags, mode));
  }
  read(fd: number, buf: Uint8Array): number {
    return wrap("read", "fd " + fd, () => fs.readSync(fd, buf, 0, buf.length, null));
  }
  pread(fd: number, buf: Uint8Array, offset: number): number {
    return wrap("pread", "fd " + fd + " at " + offset, () => fs.readSync(fd, buf, 0, buf.length, offset));
  }
  write(fd: number, buf: Uint8Array): number {
    return wrap("write", "fd " + fd, () => fs.writeSync(fd, buf));
  }
  close(fd: number): void {
    wrap("close", "fd " + fd, () => fs.closeSync(fd));
  }
  mount(): void {
    unsupported("mount");
  }
  umount(): void {
    unsupported("umount");
  }
  mkdir(path: string, mode: number): void {
    wrap("mkdir", quote(path), () => fs.mkdirSync(path, { mode }));
  }
  mknod(): void {
    unsupported("mknod");
  }
  symlink(target: string, path: string): void {
    wrap("symlink", quote(path) + " -> " + quote(target), () => fs.symlinkSync(target, path));
  }
  readlink(path: string): string {
    return wrap("readlink", quote(path), () => fs.readlinkSync(path));
  }
  unlink(path: string): void {
    wrap("unlink", quote(path), () => fs.unlinkSync(path));
  }
  rmdir(path: string): void {
    wrap("rmdir", quote(path), () => fs.rmdirSync(path));
  }
  readdir(path: string, max: number = -1): DirEntry[] {
    return wrap("open", quote(path), () =>
      listDir(path, max).map((d) => ({
        name: d.name,
        type: d.isDirectory()
          ? 4
          : d.isFile()
            ? 8
            : d.isSymbolicLink()
              ? 10
              : d.isBlockDevice()
                ? 6
                : d.isCharacterDevice()
                  ? 2
                  : 0,
      })),
    );
  }
  stat(path: string): Stat {
    return wrap("stat", quote(path), () => toStat(fs.statSync(path)));
  }
  lstat(path: string): Stat {
    return wrap("lstat", quote(path), () => toStat(fs.lstatSync(path)));
  }
  ioctl(): number {
    return unsupported("ioctl");
  }
  ioctlInt(): number {
    return unsupported("ioctl");
  }
  finitModule(): void {
    unsupported("finit_module");
  }
  addKey(): number {
    return unsupported("add_key");
  }
  invalidateKey(): void {
    unsupported("keyctl");
  }
  chdir(path: string): void {
    wrap("chdir", quote(path), () => process.chdir(path));
  }
  chroot(): void {
    unsupported("chroot");
  }
  execve(): never {
    return unsupported("execve");
  }
  fork(): number {
    return unsupported("fork");
  }
  wait(): number {
    return unsupported("wait4");
  }
  sync(): void {}
  reboot(): void {
    unsupported("reboot");
  }
  getpid(): number {
    return process.pid;
  }
  /** argv as a native program sees it: its own path, then its arguments. */
  argv(): string[] {
    return process.argv.slice(1);
  }
  environ(): string[] {
    return Object.entries(process.env).map(([k, v]) => k + "=" + v);
  }
  ueventSocket(): number {
    return unsupported("socket");
  }
  poll(): number {
    return unsupported("poll");
  }
  sleep(ms: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  }
  statfsType(_path: string): number {
    unsupported("statfs");
  }

  /** The page size of the machines the tests run on (Node does not say). */
  pageSize(): number {
    return 4096;
  }

  /** Not PID 1: the runtime's own exit is an ordinary exit. */
  setFailureAction(_doing: string, _rebootCmd: number, _delayMs: number): void {}

  monotonicMs(): number {
    return performance.now();
  }

  realtimeMs(): number {
    return Date.now();
  }

  /** A file in the scratch directory instead of a memfd: read the same way. */
  memfd(name: string, data: Uint8Array): number {
    const path = fs.mkdtempSync("/tmp/si-memfd-") + "/" + name;
    fs.writeFileSync(path, data);
    return fs.openSync(path, "r");
  }
}
