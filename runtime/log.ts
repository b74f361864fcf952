/**
 * Logging for PID 1: every line goes to /dev/kmsg (so it carries the kernel's monotonic
 * timestamp and lands in the booted system's journal); until /dev/kmsg can be opened, and
 * whenever writing it fails, lines go to the console (fd 1) instead.
 * Fatal lines use KERN_EMERG so that the console shows them even with `quiet`.
 */
import { utf8Encode } from "../lib/bytes.js";
import { replaceText } from "../lib/text.js";
import { readSmallFile } from "../syscalls/files.js";
import { OpenFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

/** syslog levels, as /dev/kmsg takes them. */
export const Level = { EMERG: 0, ERR: 3, WARNING: 4, NOTICE: 5, INFO: 6, DEBUG: 7 };

/** /dev/kmsg takes at most this many bytes a record (LOG_LINE_MAX, kernel/printk). */
const KMSG_MAX = 976;
const TAG = "storage-init: ";

/** The record written to /dev/kmsg for one line: `<level>storage-init: text`. */
export function kmsgRecord(level: number, text: string): string {
  let line = "<" + level + ">" + TAG + replaceText(text, "\n", " ");
  if (line.length > KMSG_MAX) line = line.slice(0, KMSG_MAX - 3) + "...";
  return line + "\n";
}

export class Log {
  private kmsgFd = -1;
  private debugOn = false;
  private readonly k: Kernel;

  constructor(k: Kernel) {
    this.k = k;
  }

  /** Whether debug lines are written (`storage_init.debug`). */
  setDebug(on: boolean): void {
    this.debugOn = on;
  }

  debugging(): boolean {
    return this.debugOn;
  }

  /** Opens /dev/kmsg; returns false (and keeps logging to the console) when it cannot. */
  openKmsg(): boolean {
    try {
      this.kmsgFd = this.k.open("/dev/kmsg", OpenFlags.WRONLY);
      return true;
    } catch (e) {
      return false;
    }
  }

  info(text: string): void {
    this.line(Level.INFO, text);
  }

  notice(text: string): void {
    this.line(Level.NOTICE, text);
  }

  warn(text: string): void {
    this.line(Level.WARNING, text);
  }

  error(text: string): void {
    this.line(Level.ERR, text);
  }

  debug(text: string): void {
    if (this.debugOn) this.line(Level.DEBUG, text);
  }

  /** The one line that explains why the boot stops; shown on the console whatever the loglevel. */
  fatal(text: string): void {
    this.line(Level.EMERG, text);
  }

  line(level: number, text: string): void {
    if (this.kmsgFd >= 0) {
      try {
        this.k.write(this.kmsgFd, utf8Encode(kmsgRecord(level, text)));
        return;
      } catch (e) {
        // A full or broken kmsg must not lose the line: fall through to the console.
      }
    }
    try {
      this.k.write(1, utf8Encode(TAG + text + "\n"));
    } catch (e) {
      // No console either: nothing left to report to, and logging must never be fatal.
    }
  }
}

export const PRINTK_DEVKMSG = "/proc/sys/kernel/printk_devkmsg";

/**
 * Sets the /dev/kmsg rate limit (`on`, `off` or `ratelimit`); returns the previous value, or
 * undefined when it cannot be changed (printk.devkmsg= on the command line locks it). The
 * default, `ratelimit`, keeps 10 lines per 5 s from a writer: too few for a boot log.
 */
export function setDevkmsg(k: Kernel, value: string): string | undefined {
  try {
    const old = readSmallFile(k, PRINTK_DEVKMSG, 64).trim();
    const fd = k.open(PRINTK_DEVKMSG, OpenFlags.WRONLY);
    try {
      k.write(fd, utf8Encode(value + "\n"));
    } catch (e) {
      k.close(fd);
      return undefined;
    }
    k.close(fd);
    return old;
  } catch (e) {
    return undefined;
  }
}
