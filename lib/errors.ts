/**
 * The one error model of the init, its shim and its tools.
 *
 * - Parsers of untrusted bytes and text throw `ParseError` naming what was wrong.
 * - Kernel calls throw `KernelError` (syscalls/errno.ts) naming the call, its arguments and the errno.
 * - A step that adds what it was doing wraps the cause with `withContext`, which keeps its errno.
 * - Lookups that may find nothing return `undefined`; `parseCmdline` collects its `problems`.
 * - Only `boot()` decides what is fatal; it prints `errorText(e)`.
 *
 * A plain base class, not `extends Error` (porffor: extends-error).
 */

export class InitError {
  readonly message: string;
  /** The errno of the kernel call this failure comes from, or 0 when none failed. */
  readonly errno: number;
  constructor(message: string, errno: number = 0) {
    this.message = message;
    this.errno = errno;
  }
}

/** Untrusted input (a disk, an image, a table) that is not what it must be; the message names what. */
export class ParseError extends InitError {
  constructor(message: string) {
    super(message, 0);
  }
}

/** The message of anything thrown. */
export function errorText(e: unknown): string {
  const m = (e as { message?: unknown } | undefined)?.message;
  return typeof m === "string" ? m : String(e);
}

/** The errno carried by `e`, or 0. */
export function errnoOf(e: unknown): number {
  return e instanceof InitError ? e.errno : 0;
}

/** `e` with what was being done in front of its message; its errno is kept. */
export function withContext(context: string, e: unknown): InitError {
  return new InitError(context + ": " + errorText(e), errnoOf(e));
}
