/**
 * errno names and the error of a failed kernel call. Imports lib/ only.
 */
import { InitError } from "../lib/errors.js";

/**
 * errno numbers to names (asm-generic/errno-base.h, errno.h; shared by x86-64 and aarch64): the
 * name of errno n is the n-th word; then "number name" pairs. Strings scanned at lookup, not
 * tables: a table is built when the init starts, one step per entry, and a boot looks up a few.
 */
const ERRNO_NAMES =
  "OK EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT ENOTBLK EBUSY EEXIST EXDEV " +
  "ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK " +
  "ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP";
const ERRNO_MORE =
  " 61 ENODATA 62 ETIME 65 ENOPKG 74 EBADMSG 75 EOVERFLOW 84 EILSEQ 95 EOPNOTSUPP 105 ENOBUFS 110 ETIMEDOUT 117 EUCLEAN 121 EREMOTEIO 122 EDQUOT 123 ENOMEDIUM 126 ENOKEY 127 EKEYEXPIRED 128 EKEYREVOKED 129 EKEYREJECTED ";

/** The word of space-separated `words` that starts at `start`. */
function wordFrom(words: string, start: number): string {
  const end = words.indexOf(" ", start);
  return words.slice(start, end < 0 ? words.length : end);
}

/** The errnos the logic tells apart. */
export const Errno = {
  ENOENT: 2,
  EIO: 5,
  EAGAIN: 11,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
  ENOPKG: 65,
  EBADMSG: 74,
  ENOBUFS: 105,
  ENOKEY: 126,
  EKEYEXPIRED: 127,
  EKEYREJECTED: 129,
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

/** A failed kernel call: `mount "/dev/dm-0" on "/sysroot" (erofs, ro): EINVAL`. */
export class KernelError extends InitError {
  constructor(op: string, args: string, errno: number) {
    super(op + " " + args + ": " + errnoName(errno), errno);
  }
}

/** True when `e` carries `errno`: a KernelError, or a failure wrapped around one. */
export function isErrno(e: unknown, errno: number): boolean {
  return e instanceof InitError && e.errno === errno;
}
