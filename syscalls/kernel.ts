/**
 * The one narrow interface between the init's logic and the kernel.
 *
 * `LinuxKernel` (syscalls/linux.ts) implements it over the C shim in the native binary;
 * `FakeKernel` (tests/fake_kernel.ts) implements it in memory for unit tests.
 * Every failing call throws a `KernelError` naming the operation, its arguments and the errno.
 */

// Constants are grouped in objects, not top-level UPPER_CASE names: porffor keeps JS identifiers
// in its C output, and a name such as O_RDONLY or ENOENT would collide with libc's macros.

/** open(2) flags (uapi asm-generic/fcntl.h; the same on x86-64 and aarch64). */
export const OpenFlags = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CREAT: 0o100,
  TRUNC: 0o1000,
  CLOEXEC: 0o2000000,
};

/** mount(2) flags (uapi linux/mount.h). */
export const MountFlags = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  MOVE: 8192,
  REC: 16384,
  PRIVATE: 1 << 18,
  STRICTATIME: 1 << 24,
};

/** Flags of umount2, unlinkat and statx. */
export const AtFlags = {
  /** umount2: lazy unmount. */
  MNT_DETACH: 2,
  /** unlinkat: remove a directory. */
  REMOVEDIR: 0x200,
  /** statx: do not follow a final symlink. */
  SYMLINK_NOFOLLOW: 0x100,
};

/** reboot(2) commands (uapi linux/reboot.h). */
export const RebootCmd = {
  RESTART: 0x01234567,
  HALT: 0xcdef0123,
  POWER_OFF: 0x4321fedc,
};

/** File type bits of st_mode. */
export const FileType = {
  MASK: 0o170000,
  DIR: 0o040000,
  REG: 0o100000,
  BLK: 0o060000,
  CHR: 0o020000,
  LNK: 0o120000,
};

/** poll(2) events. */
export const PollEvents = { IN: 1 };

export interface Stat {
  mode: number;
  size: number;
  /** Device numbers of a block or character device node. */
  rdevMajor: number;
  rdevMinor: number;
  /** Device the file lives on: tells file-system boundaries apart. */
  devMajor: number;
  devMinor: number;
}

export interface DirEntry {
  name: string;
  /** DT_* value: 4 directory, 8 regular, 10 symlink, 6 block, 2 char, 0 unknown. */
  type: number;
}

export interface Kernel {
  open(path: string, flags: number, mode?: number): number;
  read(fd: number, buf: Uint8Array): number;
  pread(fd: number, buf: Uint8Array, offset: number): number;
  write(fd: number, buf: Uint8Array): number;
  close(fd: number): void;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount(target: string, flags: number): void;
  mkdir(path: string, mode: number): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  symlink(target: string, path: string): void;
  readlink(path: string): string;
  unlink(path: string): void;
  rmdir(path: string): void;
  /** Directory entries, without "." and "..". */
  readdir(path: string): DirEntry[];
  stat(path: string): Stat;
  lstat(path: string): Stat;
  /** ioctl with a byte buffer the kernel reads and writes; returns the ioctl's result. */
  ioctl(fd: number, request: number, buf: Uint8Array): number;
  /** ioctl whose argument is a plain integer (LOOP_CTL_GET_FREE, LOOP_SET_FD...). */
  ioctlInt(fd: number, request: number, arg: number): number;
  finitModule(fd: number, params: string, flags: number): void;
  chdir(path: string): void;
  chroot(path: string): void;
  /** Replaces this process; returns only by throwing. */
  execve(path: string, argv: string[], envp: string[]): never;
  /** Returns the child's pid in the parent and 0 in the child. */
  fork(): number;
  /** Waits for a child; returns its raw wait status. */
  wait(pid: number): number;
  sync(): void;
  reboot(cmd: number): void;
  getpid(): number;
  /** This process's arguments and environment, as execve passed them (decoded as UTF-8). */
  argv(): string[];
  environ(): string[];
  /** A netlink socket bound to the kernel's uevent multicast group. */
  ueventSocket(): number;
  /** Waits up to timeoutMs for `events` on fd; returns the revents, 0 on timeout. */
  poll(fd: number, events: number, timeoutMs: number): number;
  sleep(ms: number): void;
  /** CLOCK_MONOTONIC in milliseconds: the same clock as the kernel's printk timestamps. */
  monotonicMs(): number;
}

/**
 * errno numbers to names (asm-generic/errno-base.h, errno.h; shared by x86-64 and aarch64): the
 * name of errno n is the n-th word; then "number name" pairs. Strings scanned at lookup, not
 * tables: a table is built when the init starts, one step per entry, and a boot looks up a few.
 */
const ERRNO_NAMES =
  "OK EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT ENOTBLK EBUSY EEXIST EXDEV " +
  "ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK " +
  "ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP";
const ERRNO_MORE = " 61 ENODATA 62 ETIME 74 EBADMSG 75 EOVERFLOW 84 EILSEQ 95 EOPNOTSUPP 110 ETIMEDOUT 117 EUCLEAN 121 EREMOTEIO 122 EDQUOT 129 EKEYREJECTED ";

/** The word of space-separated `words` that starts at `start`. */
function wordFrom(words: string, start: number): string {
  const end = words.indexOf(" ", start);
  return words.slice(start, end < 0 ? words.length : end);
}

/** The errnos the logic tells apart. */
export const Errno = {
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EAGAIN: 11,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
};

export function errnoName(errno: number): string {
  if (!Number.isInteger(errno) || errno < 0) return "errno " + errno;
  let start = 0;
  for (let n = 0; n < errno && start >= 0; n++) {
    const space = ERRNO_NAMES.indexOf(" ", start);
    start = space < 0 ? -1 : space + 1;
  }
  if (start >= 0) return wordFrom(ERRNO_NAMES, start);
  const key = " " + errno + " ";
  const at = ERRNO_MORE.indexOf(key);
  return at < 0 ? "errno " + errno : wordFrom(ERRNO_MORE, at + key.length);
}

/**
 * A failed kernel call: `mount "/dev/dm-0" on "/sysroot" (erofs, ro): EINVAL`.
 * Not a subclass of Error: porffor alpha.7 loses `message` on `extends Error`.
 */
export class KernelError {
  readonly op: string;
  readonly args: string;
  readonly errno: number;
  readonly code: string;
  readonly message: string;
  constructor(op: string, args: string, errno: number) {
    this.op = op;
    this.args = args;
    this.errno = errno;
    this.code = errnoName(errno);
    this.message = op + " " + args + ": " + this.code;
  }
}

/**
 * Quotes a path or value for a log line: printable ASCII stays, `"` and `\\` are escaped, and
 * every other character becomes \\xNN or \\uNNNN, so that names read from a hostile disk cannot
 * inject terminal control sequences. (Not JSON.stringify: porffor alpha.7's truncates
 * characters above U+00FF.)
 */
export function q(s: string): string {
  const hex = "0123456789abcdef";
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92) out += "\\" + s[i];
    else if (c >= 32 && c < 127) out += s[i];
    else if (c < 256) out += "\\x" + hex[c >> 4] + hex[c & 15];
    else out += "\\u" + hex[c >> 12] + hex[(c >> 8) & 15] + hex[(c >> 4) & 15] + hex[c & 15];
  }
  return out + '"';
}

/** True when `e` is a KernelError carrying `errno`. */
export function isErrno(e: unknown, errno: number): boolean {
  return e instanceof KernelError && e.errno === errno;
}

/** A file's type (FILE_TYPE_*) from its st_mode. */
export function fileType(st: Stat): number {
  return st.mode & FileType.MASK;
}

/** Closes fds >= 0, ignoring errors: used only on paths that are already failing. */
export function closeQuietly(k: Kernel, fds: number[]): void {
  for (const fd of fds) {
    if (fd < 0) continue;
    try {
      k.close(fd);
    } catch (e) {
      // Already failing; the original error is the one to report.
    }
  }
}
