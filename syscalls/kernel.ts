/**
 * The one narrow interface between the init's logic and the kernel.
 *
 * `LinuxKernel` (syscalls/linux.ts) implements it over the C shim in the native binary;
 * `FakeKernel` (tests/fake_kernel.ts) implements it in memory for unit tests.
 * Every failing call throws a `KernelError` naming the operation, its arguments and the errno.
 */

// Constants are grouped in objects, not top-level UPPER_CASE names: porffor keeps JS identifiers
// in its C output, and a name such as O_RDONLY or ENOENT would collide with libc's macros
// (porffor: c-macro-names).

/**
 * open(2) flags, x86-64's numbers (uapi asm-generic/fcntl.h). arm64 numbers DIRECTORY and
 * NOFOLLOW otherwise; the shim (si_open_flags) passes the machine's own.
 */
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
  REMOUNT: 32,
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

/** Special keyring ids of add_key(2) (uapi linux/keyctl.h). */
export const KeyringId = {
  /** The calling thread's keyring, made on first use and dropped by execve. */
  THREAD: -1,
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
  /**
   * Directory entries, without "." and "..". With `max`, reading stops once more than `max`
   * entries were read (max + 1 come back: the caller knows there were more without the kernel
   * listing a directory of millions of names).
   */
  readdir(path: string, max?: number): DirEntry[];
  stat(path: string): Stat;
  lstat(path: string): Stat;
  /** ioctl with a byte buffer the kernel reads and writes; returns the ioctl's result. */
  ioctl(fd: number, request: number, buf: Uint8Array): number;
  /** ioctl whose argument is a plain integer (LOOP_CTL_GET_FREE, LOOP_SET_FD...). */
  ioctlInt(fd: number, request: number, arg: number): number;
  finitModule(fd: number, params: string, flags: number): void;
  /** add_key(2): a key of `type` with `payload` in `keyring` (KeyringId or a serial); returns its serial. */
  addKey(type: string, description: string, payload: Uint8Array, keyring: number): number;
  /** keyctl(KEYCTL_INVALIDATE): the key is gone from every keyring. */
  invalidateKey(id: number): void;
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
  /** CLOCK_REALTIME in milliseconds since the epoch. */
  realtimeMs(): number;
  /**
   * An in-memory file (memfd_create) holding `data`, read from its start, that the program
   * execve() starts inherits (no close-on-exec). Returns its descriptor.
   */
  memfd(name: string, data: Uint8Array): number;
  /** The type of the file system `path` is on: statfs(2)'s f_type (a *_MAGIC of uapi linux/magic.h). */
  statfsType(path: string): number;
  /** The kernel's page size in bytes (dm-verity's largest block size). */
  pageSize(): number;
  /**
   * What PID 1 does if the runtime itself exits or aborts (out of memory, an uncaught throw):
   * the fatal line says it failed to `doing`, then `reboot(rebootCmd)` after `delayMs`.
   */
  setFailureAction(doing: string, rebootCmd: number, delayMs: number): void;
}

/** A file's type (FILE_TYPE_*) from its st_mode. */
export function fileType(st: Stat): number {
  return st.mode & FileType.MASK;
}
