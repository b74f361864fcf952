/*
 * The thin C side of syscalls/linux.ts. Included into porffor's C output at file scope.
 *
 * Contract: every si_* function moves bytes between caller-owned buffers and the kernel and
 * returns the raw result, or -errno on failure. No policy, no parsing: that lives in TypeScript.
 * Only libc's syscall interface by name (SYS_*), so the same code builds for aarch64.
 *
 * Value layout this relies on (porffor 0.0.0-alpha.7, checked by tests/native/layout_prog.ts):
 *   a JS value is { f64 val; i32 type }; heap values are u32 offsets into MEM;
 *   a typed array is { u32 length, u32 bufferPtr (+byteOffset), u32 byteOffset } and its
 *   bytes are at MEM + bufferPtr + 4.
 */
#ifndef STORAGE_INIT_SHIM_H
#define STORAGE_INIT_SHIM_H
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SI_TYPE_NUMBER 1
#define SI_TYPE_UINT8ARRAY 81

/* Numbers may be lowered to f64, i32 or a boxed jsval depending on porffor's inference. */
static inline double si_num_jv(jsval v) { return v.val; }
static inline double si_num_d(double d) { return d; }
static inline double si_num_i(int32_t i) { return (double)i; }
#define NUM(x) _Generic((x), jsval: si_num_jv, double: si_num_d, default: si_num_i)(x)

static inline jsval si_set_jv(double d) { return (jsval){ d, SI_TYPE_NUMBER }; }
static inline double si_set_d(double d) { return d; }
static inline int32_t si_set_i(double d) { return (int32_t)d; }
#define SETNUM(r, v) ((r) = _Generic((r), jsval: si_set_jv, double: si_set_d, default: si_set_i)((double)(v)))

/* A Uint8Array's bytes and length. Anything else is a programming error: abort loudly. */
static inline uint8_t *si_bytes(jsval v) {
  if (v.type != SI_TYPE_UINT8ARRAY) {
    static const char m[] = "storage-init: shim: expected a Uint8Array\n";
    (void)!write(2, m, sizeof m - 1);
    _exit(121);
  }
  return (uint8_t *)(MEM + *(uint32_t *)(MEM + (uint32_t)v.val + 4) + 4);
}
static inline uint32_t si_len(jsval v) { return *(uint32_t *)(MEM + (uint32_t)v.val); }
#define BUF(x) si_bytes(x)
#define BUFLEN(x) si_len(x)
/* An optional C string: an empty Uint8Array means NULL. */
#define OPTSTR(x) (si_len(x) ? (const char *)si_bytes(x) : (const char *)0)

static inline double si_ret(long r) { return r < 0 ? -(double)errno : (double)r; }

/*
 * The Kernel interface's open flags are x86-64's numbers (syscalls/kernel.ts); arm64 gives
 * O_DIRECTORY and O_NOFOLLOW others (arch/arm64/include/uapi/asm/fcntl.h, where x86-64's are
 * O_DIRECT and O_LARGEFILE): this machine's values come from the libc's macros.
 */
static long si_open_flags(double flags) {
  long f = (long)flags;
  long out = f & ~(0200000L | 0400000L);
  if (f & 0200000L) out |= O_DIRECTORY;
  if (f & 0400000L) out |= O_NOFOLLOW;
  return out;
}
static double si_openat(const char *path, double flags, double mode) {
  return si_ret(syscall(SYS_openat, AT_FDCWD, path, si_open_flags(flags), (long)mode));
}
static double si_read(double fd, uint8_t *buf, uint32_t len) {
  return si_ret(syscall(SYS_read, (long)fd, buf, (long)len));
}
static double si_pread(double fd, uint8_t *buf, uint32_t len, double off) {
  return si_ret(syscall(SYS_pread64, (long)fd, buf, (long)len, (long)off));
}
static double si_write(double fd, const uint8_t *buf, uint32_t len) {
  return si_ret(syscall(SYS_write, (long)fd, buf, (long)len));
}
static double si_close(double fd) { return si_ret(syscall(SYS_close, (long)fd)); }
static double si_mount(const char *src, const char *target, const char *fstype, double flags,
                       const char *data) {
  return si_ret(syscall(SYS_mount, src, target, fstype, (unsigned long)flags, data));
}
static double si_umount(const char *target, double flags) {
  return si_ret(syscall(SYS_umount2, target, (long)flags));
}
static double si_mkdir(const char *path, double mode) {
  return si_ret(syscall(SYS_mkdirat, AT_FDCWD, path, (long)mode));
}
static double si_mknod(const char *path, double mode, double major, double minor) {
  unsigned long dev = (((unsigned long)major & 0xfff) << 8) | ((unsigned long)minor & 0xff) |
                      (((unsigned long)minor & ~0xfful) << 12) |
                      (((unsigned long)major & ~0xffful) << 32);
  return si_ret(syscall(SYS_mknodat, AT_FDCWD, path, (long)mode, dev));
}
static double si_symlink(const char *target, const char *path) {
  return si_ret(syscall(SYS_symlinkat, target, AT_FDCWD, path));
}
static double si_readlink(const char *path, uint8_t *buf, uint32_t len) {
  return si_ret(syscall(SYS_readlinkat, AT_FDCWD, path, buf, (long)len));
}
static double si_unlink(const char *path, double flags) {
  return si_ret(syscall(SYS_unlinkat, AT_FDCWD, path, (long)flags));
}
static double si_getdents(double fd, uint8_t *buf, uint32_t len) {
  return si_ret(syscall(SYS_getdents64, (long)fd, buf, (long)len));
}
static double si_statx(const char *path, double flags, uint8_t *buf) {
  return si_ret(syscall(SYS_statx, AT_FDCWD, path, (long)flags, 0x7ffL, buf));
}
static double si_ioctl(double fd, double request, uint8_t *buf) {
  return si_ret(syscall(SYS_ioctl, (long)fd, (unsigned long)request, buf));
}
static double si_ioctl_int(double fd, double request, double arg) {
  return si_ret(syscall(SYS_ioctl, (long)fd, (unsigned long)request, (long)arg));
}
static double si_finit_module(double fd, const char *params, double flags) {
  return si_ret(syscall(SYS_finit_module, (long)fd, params, (long)flags));
}
/* add_key(2): a key of `type` in `keyring` (a KEY_SPEC_* value or a serial); its serial or -errno. */
static double si_add_key(const char *type, const char *desc, const uint8_t *payload, uint32_t len, double keyring) {
  return si_ret(syscall(SYS_add_key, type, desc, payload, (long)len, (long)(int)keyring));
}
/* keyctl(KEYCTL_INVALIDATE, id) (uapi linux/keyctl.h: 21). */
static double si_key_invalidate(double id) { return si_ret(syscall(SYS_keyctl, 21L, (long)(int)id)); }
static double si_chdir(const char *path) { return si_ret(syscall(SYS_chdir, path)); }
static double si_chroot(const char *path) { return si_ret(syscall(SYS_chroot, path)); }
static double si_sync(void) { return si_ret(syscall(SYS_sync)); }
static double si_reboot(double cmd) {
  return si_ret(syscall(SYS_reboot, 0xfee1deadL, 672274793L, (long)(unsigned int)cmd, 0L));
}
static double si_getpid(void) { return si_ret(syscall(SYS_getpid)); }

/*
 * argv (which 0) or environ (which 1) as NUL-terminated strings into buf; returns the length
 * they need, which is more than len when buf was too small (then the copy is incomplete). argv
 * is the one porffor's main() keeps in porf_argv (tests/native/syscalls_prog.ts compares it with
 * Node's).
 */
extern char **environ;
static double si_process_strings(double which, uint8_t *buf, uint32_t len) {
  char **v = which == 0 ? porf_argv : environ;
  size_t need = 0;
  for (char **p = v; p && *p; p++) {
    size_t n = strlen(*p) + 1;
    if (need + n <= len) memcpy(buf + need, *p, n);
    need += n;
  }
  return (double)need;
}

/* argv/envp arrive as one buffer of NUL-terminated strings each. */
static double si_execve(const char *path, uint8_t *args, uint32_t args_len, double argc,
                        uint8_t *envs, uint32_t envs_len, double envc) {
  char *argv[64], *envp[64];
  int na = (int)argc, ne = (int)envc;
  if (na > 63 || ne > 63) return -(double)E2BIG;
  uint32_t off = 0;
  for (int i = 0; i < na; i++) { argv[i] = (char *)args + off; off += (uint32_t)strlen(argv[i]) + 1; if (off > args_len) return -(double)EINVAL; }
  argv[na] = 0;
  off = 0;
  for (int i = 0; i < ne; i++) { envp[i] = (char *)envs + off; off += (uint32_t)strlen(envp[i]) + 1; if (off > envs_len) return -(double)EINVAL; }
  envp[ne] = 0;
  return si_ret(syscall(SYS_execve, path, argv, envp));
}

static double si_fork(void) {
#ifdef SYS_fork
  return si_ret(syscall(SYS_fork));
#else
  return si_ret(syscall(SYS_clone, 17L /* SIGCHLD */, 0L, 0L, 0L, 0L));
#endif
}
static double si_wait(double pid) {
  int status = 0;
  long r = syscall(SYS_wait4, (long)pid, &status, 0L, 0L);
  return r < 0 ? -(double)errno : (double)status;
}

/* AF_NETLINK / NETLINK_KOBJECT_UEVENT, kernel multicast group 1. */
static double si_uevent_socket(void) {
  long fd = syscall(SYS_socket, 16L, 2L | 02000000L | 04000L /* SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK */, 15L);
  if (fd < 0) return -(double)errno;
  struct { uint16_t family, pad; uint32_t pid, groups; } sa = { 16, 0, 0, 1 };
  if (syscall(SYS_bind, fd, &sa, (long)sizeof sa) < 0) { int e = errno; syscall(SYS_close, fd); return -(double)e; }
  /* Room for a burst of devices (an HBA scanning a JBOD); a full socket still only means a rescan. */
  int size = 4 << 20;
  (void)syscall(SYS_setsockopt, fd, 1L /* SOL_SOCKET */, 33L /* SO_RCVBUFFORCE */, &size, (long)sizeof size);
  return (double)fd;
}

static double si_poll(double fd, double events, double timeout_ms) {
  struct pollfd p = { (int)fd, (short)events, 0 };
  struct timespec ts = { (time_t)(timeout_ms / 1000), (long)((long long)timeout_ms % 1000) * 1000000L };
  long r = syscall(SYS_ppoll, &p, 1L, timeout_ms < 0 ? (struct timespec *)0 : &ts, 0L, 8L);
  return r < 0 ? -(double)errno : (r == 0 ? 0.0 : (double)p.revents);
}

static double si_nanosleep(double ms) {
  struct timespec ts = { (time_t)(ms / 1000), (long)((long long)ms % 1000) * 1000000L };
  return si_ret(syscall(SYS_nanosleep, &ts, 0L));
}

/* CRC-32 (IEEE, reflected) of buf[start, end): the GPT checksum; lib/crc32.ts is the reference. */
static double si_crc32(const uint8_t *buf, double start, double end) {
  static uint32_t table[256];
  static int ready;
  if (!ready) {
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = n;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    ready = 1;
  }
  uint32_t c = 0xffffffffu;
  for (uint32_t i = (uint32_t)start; i < (uint32_t)end; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >> 8);
  return (double)(c ^ 0xffffffffu);
}

/* statfs(2)'s f_type of the file system `path` is on; the magic numbers are below 2^32. */
static double si_statfs_type(const char *path) {
  struct statfs s;
  if (syscall(SYS_statfs, path, &s) < 0) return -(double)errno;
  return (double)(uint32_t)s.f_type;
}

/* The page size the kernel passed in the auxiliary vector. */
static double si_page_size(void) { return (double)getauxval(AT_PAGESZ); }

/* CLOCK_REALTIME in milliseconds, with microsecond resolution. */
static double si_realtime_ms(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, (long)CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000) / 1000.0;
}

/*
 * An in-memory file holding buf, its offset back at 0, and without close-on-exec: the next
 * program inherits it (systemd's --deserialize=<fd>). Returns the fd or -errno.
 */
static double si_memfd(const char *name, const uint8_t *buf, uint32_t len) {
  long fd = syscall(SYS_memfd_create, name, 0L);
  if (fd < 0) return -(double)errno;
  for (uint32_t done = 0; done < len;) {
    long n = syscall(SYS_write, fd, buf + done, (long)(len - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      double e = n < 0 ? -(double)errno : -(double)EIO;
      syscall(SYS_close, fd);
      return e;
    }
    done += (uint32_t)n;
  }
  if (syscall(SYS_lseek, fd, 0L, (long)SEEK_SET) < 0) {
    double e = -(double)errno;
    syscall(SYS_close, fd);
    return e;
  }
  return (double)fd;
}

/* CLOCK_MONOTONIC in milliseconds, with microsecond resolution. */
static double si_monotonic_ms(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, (long)CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000) / 1000.0;
}

/*
 * PID 1 must never exit: the kernel would panic with no explanation. The native build links
 * with --wrap=exit,_exit,_Exit,abort (toolchain/native.mjs), so that every way out of the
 * runtime and the shim (porffor's reservation and out-of-memory exits, an uncaught throw, a
 * return from main, an abort) ends here. In PID 1 that is the one fatal line on /dev/kmsg and
 * the failure action runtime/phases.ts last set (si_set_failure_action); in any other process
 * (the native tests) the real exit.
 */
static char si_failure_doing[200] = "start the init";
static long si_failure_cmd = 0x01234567L; /* LINUX_REBOOT_CMD_RESTART until the command line says */
static long si_failure_delay_ms = 5000;

static double si_set_failure_action(const char *doing, uint32_t len, double cmd, double delay_ms) {
  if (len >= sizeof si_failure_doing) len = sizeof si_failure_doing - 1;
  memcpy(si_failure_doing, doing, len);
  si_failure_doing[len] = 0;
  si_failure_cmd = (long)cmd;
  si_failure_delay_ms = (long)delay_ms;
  return 0;
}

static size_t si_append(char *out, size_t at, size_t cap, const char *s) {
  while (*s && at + 1 < cap) out[at++] = *s++;
  out[at] = 0;
  return at;
}

static size_t si_append_int(char *out, size_t at, size_t cap, long v) {
  char digits[24];
  int n = 0;
  unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
  do digits[n++] = (char)('0' + u % 10); while ((u /= 10) && n < 23);
  if (v < 0) digits[n++] = '-';
  while (n > 0 && at + 1 < cap) out[at++] = digits[--n];
  out[at] = 0;
  return at;
}

__attribute__((noreturn)) static void si_last_words(const char *what, long status) {
  char line[400];
  size_t n = si_append(line, 0, sizeof line, "<0>storage-init: failed to ");
  n = si_append(line, n, sizeof line, si_failure_doing);
  n = si_append(line, n, sizeof line, ": the runtime ");
  n = si_append(line, n, sizeof line, what);
  if (status >= 0) {
    n = si_append(line, n, sizeof line, " with status ");
    n = si_append_int(line, n, sizeof line, status);
  }
  n = si_append(line, n, sizeof line, " (out of memory, or an error it could not report: porffor's own message is on the console)\n");
  long fd = syscall(SYS_openat, AT_FDCWD, "/dev/kmsg", 1L /* O_WRONLY */, 0L);
  if (fd < 0 || syscall(SYS_write, fd, line, (long)n) < 0) (void)!syscall(SYS_write, 1L, line + 3, (long)(n - 3));
  struct timespec ts = { si_failure_delay_ms / 1000, (si_failure_delay_ms % 1000) * 1000000L };
  syscall(SYS_nanosleep, &ts, 0L);
  syscall(SYS_sync);
  syscall(SYS_reboot, 0xfee1deadL, 672274793L, si_failure_cmd, 0L);
  for (;;) {
    struct timespec hour = { 3600, 0 };
    syscall(SYS_nanosleep, &hour, 0L);
  }
}

__attribute__((noreturn)) void __real_exit(int);
__attribute__((noreturn)) void __real__exit(int);
__attribute__((noreturn)) void __real__Exit(int);
__attribute__((noreturn)) void __real_abort(void);
__attribute__((noreturn, used)) void __wrap_exit(int status) {
  if (syscall(SYS_getpid) != 1) __real_exit(status);
  si_last_words("exited", status);
}
__attribute__((noreturn, used)) void __wrap__exit(int status) {
  if (syscall(SYS_getpid) != 1) __real__exit(status);
  si_last_words("exited", status);
}
__attribute__((noreturn, used)) void __wrap__Exit(int status) {
  if (syscall(SYS_getpid) != 1) __real__Exit(status);
  si_last_words("exited", status);
}
__attribute__((noreturn, used)) void __wrap_abort(void) {
  if (syscall(SYS_getpid) != 1) __real_abort();
  si_last_words("aborted", -1);
}
#endif
