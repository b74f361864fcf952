/**
 * The real `Kernel`: each method converts its arguments to bytes, calls one si_* function of
 * syscalls/shim.h through porffor's inline C, and turns a negative result into a KernelError.
 * Only meaningful in the native binary; Node never loads this module.
 *
 * Locals named in inline C carry a `c_` prefix so that a bundler rename fails the C compile
 * loudly instead of binding the wrong variable.
 */
import { setCrc32Impl } from "../lib/crc32.js";
import { cString, cStringList, splitNul, utf8Decode, utf8Encode } from "../lib/bytes.js";
import { quote } from "../lib/quote.js";
import { parseDirents, parseStatx, STATX_SIZE } from "./decode.js";
import { KernelError } from "./errno.js";
import { AtFlags, OpenFlags } from "./kernel.js";
import type { DirEntry, Kernel, Stat } from "./kernel.js";

Porffor.c`#include "shim.h"`;

/**
 * Throws the KernelError for a negative result. Callers test `r < 0` first and build the
 * argument text only then: formatting on every successful call cost measurable time under TCG.
 */
function fail(r: number, op: string, args: string): never {
  throw new KernelError(op, args, -r);
}

/** An empty buffer stands for a NULL pointer in the shim (OPTSTR). */
const NONE = new Uint8Array(0);

function optString(s: string): Uint8Array {
  return s === "" ? NONE : cString(s);
}

export class LinuxKernel implements Kernel {
  open(path: string, flags: number, mode: number = 0): number {
    const c_path = cString(path);
    const c_flags = flags | OpenFlags.CLOEXEC;
    const c_mode = mode;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_openat((const char *)BUF(c_path), NUM(c_flags), NUM(c_mode)));`;
    if (c_r < 0) fail(c_r, "open", quote(path));
    return c_r;
  }

  read(fd: number, buf: Uint8Array): number {
    const c_fd = fd;
    const c_buf = buf;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_read(NUM(c_fd), BUF(c_buf), BUFLEN(c_buf)));`;
    if (c_r < 0) fail(c_r, "read", "fd " + fd);
    return c_r;
  }

  pread(fd: number, buf: Uint8Array, offset: number): number {
    const c_fd = fd;
    const c_buf = buf;
    const c_off = offset;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_pread(NUM(c_fd), BUF(c_buf), BUFLEN(c_buf), NUM(c_off)));`;
    if (c_r < 0) fail(c_r, "pread", "fd " + fd + " at " + offset);
    return c_r;
  }

  write(fd: number, buf: Uint8Array): number {
    const c_fd = fd;
    const c_buf = buf;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_write(NUM(c_fd), BUF(c_buf), BUFLEN(c_buf)));`;
    if (c_r < 0) fail(c_r, "write", "fd " + fd);
    return c_r;
  }

  close(fd: number): void {
    const c_fd = fd;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_close(NUM(c_fd)));`;
    if (c_r < 0) fail(c_r, "close", "fd " + fd);
  }

  mount(source: string, target: string, fstype: string, flags: number, data: string): void {
    const c_src = optString(source);
    const c_target = cString(target);
    const c_fstype = optString(fstype);
    const c_flags = flags;
    const c_data = optString(data);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_mount(OPTSTR(c_src), (const char *)BUF(c_target), OPTSTR(c_fstype), NUM(c_flags), OPTSTR(c_data)));`;
    if (c_r < 0)
      fail(
        c_r,
        "mount",
        quote(source) +
          " on " +
          quote(target) +
          " (" +
          (fstype === "" ? "flags " + flags : fstype) +
          (data === "" ? "" : ", " + data) +
          ")",
      );
  }

  umount(target: string, flags: number): void {
    const c_target = cString(target);
    const c_flags = flags;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_umount((const char *)BUF(c_target), NUM(c_flags)));`;
    if (c_r < 0) fail(c_r, "umount", quote(target));
  }

  mkdir(path: string, mode: number): void {
    const c_path = cString(path);
    const c_mode = mode;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_mkdir((const char *)BUF(c_path), NUM(c_mode)));`;
    if (c_r < 0) fail(c_r, "mkdir", quote(path));
  }

  mknod(path: string, mode: number, major: number, minor: number): void {
    const c_path = cString(path);
    const c_mode = mode;
    const c_major = major;
    const c_minor = minor;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_mknod((const char *)BUF(c_path), NUM(c_mode), NUM(c_major), NUM(c_minor)));`;
    if (c_r < 0) fail(c_r, "mknod", quote(path) + " " + major + ":" + minor);
  }

  symlink(target: string, path: string): void {
    const c_target = cString(target);
    const c_path = cString(path);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_symlink((const char *)BUF(c_target), (const char *)BUF(c_path)));`;
    if (c_r < 0) fail(c_r, "symlink", quote(path) + " -> " + quote(target));
  }

  readlink(path: string): string {
    const c_path = cString(path);
    const c_buf = new Uint8Array(4096);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_readlink((const char *)BUF(c_path), BUF(c_buf), BUFLEN(c_buf)));`;
    if (c_r < 0) fail(c_r, "readlink", quote(path));
    const n = c_r;
    return utf8Decode(c_buf, 0, n);
  }

  unlink(path: string): void {
    this.unlinkAt(path, 0, "unlink");
  }

  rmdir(path: string): void {
    this.unlinkAt(path, AtFlags.REMOVEDIR, "rmdir");
  }

  private unlinkAt(path: string, flags: number, op: string): void {
    const c_path = cString(path);
    const c_flags = flags;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_unlink((const char *)BUF(c_path), NUM(c_flags)));`;
    if (c_r < 0) fail(c_r, op, quote(path));
  }

  readdir(path: string, max: number = -1): DirEntry[] {
    const fd = this.open(path, OpenFlags.RDONLY | OpenFlags.DIRECTORY);
    const out: DirEntry[] = [];
    const c_buf = new Uint8Array(4096);
    const c_fd = fd;
    try {
      for (;;) {
        let c_r = 0;
        Porffor.c`SETNUM(c_r, si_getdents(NUM(c_fd), BUF(c_buf), BUFLEN(c_buf)));`;
        if (c_r < 0) fail(c_r, "getdents64", quote(path));
        const n = c_r;
        if (n === 0) break;
        parseDirents(c_buf, n, out);
        if (max >= 0 && out.length > max) break;
      }
    } catch (e) {
      this.close(fd);
      throw e;
    }
    this.close(fd);
    // One getdents64 buffer holds many entries: as many as the interface promises, no more.
    return max >= 0 && out.length > max + 1 ? out.slice(0, max + 1) : out;
  }

  stat(path: string): Stat {
    return this.statx(path, 0, "stat");
  }

  lstat(path: string): Stat {
    return this.statx(path, AtFlags.SYMLINK_NOFOLLOW, "lstat");
  }

  private statx(path: string, flags: number, op: string): Stat {
    const c_path = cString(path);
    const c_flags = flags;
    const c_buf = new Uint8Array(STATX_SIZE);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_statx((const char *)BUF(c_path), NUM(c_flags), BUF(c_buf)));`;
    if (c_r < 0) fail(c_r, op, quote(path));
    return parseStatx(c_buf);
  }

  ioctl(fd: number, request: number, buf: Uint8Array): number {
    const c_fd = fd;
    const c_req = request;
    const c_buf = buf;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_ioctl(NUM(c_fd), NUM(c_req), BUF(c_buf)));`;
    if (c_r < 0) fail(c_r, "ioctl", "0x" + (request >>> 0).toString(16) + " on fd " + fd);
    return c_r;
  }

  ioctlInt(fd: number, request: number, arg: number): number {
    const c_fd = fd;
    const c_req = request;
    const c_arg = arg;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_ioctl_int(NUM(c_fd), NUM(c_req), NUM(c_arg)));`;
    if (c_r < 0) fail(c_r, "ioctl", "0x" + (request >>> 0).toString(16) + " on fd " + fd);
    return c_r;
  }

  finitModule(fd: number, params: string, flags: number): void {
    const c_fd = fd;
    const c_params = cString(params);
    const c_flags = flags;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_finit_module(NUM(c_fd), (const char *)BUF(c_params), NUM(c_flags)));`;
    if (c_r < 0) fail(c_r, "finit_module", "fd " + fd);
  }

  addKey(type: string, description: string, payload: Uint8Array, keyring: number): number {
    const c_type = cString(type);
    const c_desc = cString(description);
    const c_payload = payload;
    const c_keyring = keyring;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_add_key((const char *)BUF(c_type), (const char *)BUF(c_desc), BUF(c_payload), BUFLEN(c_payload), NUM(c_keyring)));`;
    if (c_r < 0) fail(c_r, "add_key", type + " " + quote(description));
    return c_r;
  }

  invalidateKey(id: number): void {
    const c_id = id;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_key_invalidate(NUM(c_id)));`;
    if (c_r < 0) fail(c_r, "keyctl", "KEYCTL_INVALIDATE " + id);
  }

  chdir(path: string): void {
    const c_path = cString(path);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_chdir((const char *)BUF(c_path)));`;
    if (c_r < 0) fail(c_r, "chdir", quote(path));
  }

  chroot(path: string): void {
    const c_path = cString(path);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_chroot((const char *)BUF(c_path)));`;
    if (c_r < 0) fail(c_r, "chroot", quote(path));
  }

  execve(path: string, argv: string[], envp: string[]): never {
    const c_path = cString(path);
    const c_args = cStringList(argv);
    const c_argc = argv.length;
    const c_envs = cStringList(envp);
    const c_envc = envp.length;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_execve((const char *)BUF(c_path), BUF(c_args), BUFLEN(c_args), NUM(c_argc), BUF(c_envs), BUFLEN(c_envs), NUM(c_envc)));`;
    throw new KernelError("execve", quote(path), -c_r);
  }

  fork(): number {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_fork());`;
    if (c_r < 0) fail(c_r, "fork", "");
    return c_r;
  }

  wait(pid: number): number {
    const c_pid = pid;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_wait(NUM(c_pid)));`;
    if (c_r < 0) fail(c_r, "wait4", "pid " + pid);
    return c_r;
  }

  sync(): void {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_sync());`;
    if (c_r < 0) fail(c_r, "sync", "");
  }

  reboot(cmd: number): void {
    const c_cmd = cmd;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_reboot(NUM(c_cmd)));`;
    if (c_r < 0) fail(c_r, "reboot", "0x" + (cmd >>> 0).toString(16));
  }

  getpid(): number {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_getpid());`;
    return c_r;
  }

  // The process's strings come from the shim, not `process` (porffor: no-process).
  argv(): string[] {
    return this.processStrings(0);
  }

  environ(): string[] {
    return this.processStrings(1);
  }

  /** Copied from this process's memory: reading /proc/self/cmdline costs the kernel more. */
  private processStrings(which: number): string[] {
    let buf = new Uint8Array(4096);
    for (;;) {
      const c_which = which;
      const c_buf = buf;
      let c_r = 0;
      Porffor.c`SETNUM(c_r, si_process_strings(NUM(c_which), BUF(c_buf), BUFLEN(c_buf)));`;
      if (c_r <= buf.length) return splitNul(buf, c_r);
      buf = new Uint8Array(c_r);
    }
  }

  ueventSocket(): number {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_uevent_socket());`;
    if (c_r < 0) fail(c_r, "socket", "AF_NETLINK NETLINK_KOBJECT_UEVENT");
    return c_r;
  }

  poll(fd: number, events: number, timeoutMs: number): number {
    const c_fd = fd;
    const c_events = events;
    const c_timeout = timeoutMs;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_poll(NUM(c_fd), NUM(c_events), NUM(c_timeout)));`;
    if (c_r < 0) fail(c_r, "poll", "fd " + fd);
    return c_r;
  }

  sleep(ms: number): void {
    const c_ms = ms;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_nanosleep(NUM(c_ms)));`;
    // EINTR only shortens the wait, which every caller tolerates (they re-check a deadline).
  }

  setFailureAction(doing: string, rebootCmd: number, delayMs: number): void {
    const c_doing = utf8Encode(doing);
    const c_cmd = rebootCmd;
    const c_delay = delayMs;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_set_failure_action((const char *)BUF(c_doing), BUFLEN(c_doing), NUM(c_cmd), NUM(c_delay)));`;
  }

  statfsType(path: string): number {
    const c_path = cString(path);
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_statfs_type((const char *)BUF(c_path)));`;
    if (c_r < 0) fail(c_r, "statfs", quote(path));
    return c_r;
  }

  pageSize(): number {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_page_size());`;
    return c_r;
  }

  monotonicMs(): number {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_monotonic_ms());`;
    return c_r;
  }

  realtimeMs(): number {
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_realtime_ms());`;
    return c_r;
  }

  memfd(name: string, data: Uint8Array): number {
    const c_name = cString(name);
    const c_buf = data;
    let c_r = 0;
    Porffor.c`SETNUM(c_r, si_memfd((const char *)BUF(c_name), BUF(c_buf), BUFLEN(c_buf)));`;
    if (c_r < 0) fail(c_r, "memfd_create", quote(name));
    return c_r;
  }
}

/** CRC-32 in C, for lib/crc32.ts in the native binary (installNative). */
function nativeCrc32(b: Uint8Array, start: number, end: number): number {
  const c_buf = b;
  const c_start = start;
  const c_end = end;
  let c_r = 0;
  Porffor.c`SETNUM(c_r, si_crc32(BUF(c_buf), NUM(c_start), NUM(c_end)));`;
  return c_r;
}

/** Swaps in the C implementations the native binary has: every native entry point calls it first. */
export function installNative(): void {
  setCrc32Impl(nativeCrc32);
}
