/**
 * storage-init's entry: runs the boot phases in order and decides what is fatal.
 * Every failure ends in one clear line and the configured action; this never returns.
 */
import type { Kernel } from "../syscalls/kernel.js";
import { LinuxKernel } from "../syscalls/linux.js";
import { OpenFlags } from "../syscalls/kernel.js";
import { utf8Decode } from "../syscalls/bytes.js";
import { defaultConfig, parseCmdline } from "./cmdline.js";
import type { Config } from "./cmdline.js";
import { finalAction } from "./failure.js";
import { Log } from "./log.js";
import { mountApiFilesystems } from "./mount.js";

export const VERSION = "0.1.0";

function errorText(e: unknown): string {
  const m = (e as { message?: unknown }).message;
  return typeof m === "string" ? m : String(e);
}

/** Reads a whole (small) file such as /proc/cmdline. */
export function readText(k: Kernel, path: string): string {
  const fd = k.open(path, OpenFlags.RDONLY);
  const buf = new Uint8Array(65536);
  let n = 0;
  try {
    for (;;) {
      const r = k.pread(fd, buf.subarray(n), n);
      n += r;
      if (r === 0 || n >= buf.length) break;
    }
  } catch (e) {
    k.close(fd);
    throw e;
  }
  k.close(fd);
  return utf8Decode(buf, 0, n);
}

/**
 * What the catch block in boot() needs. An object, not locals: porffor's try/catch is
 * setjmp/longjmp, and a local assigned inside try reads stale in catch (tests/native defects).
 */
interface BootState {
  phase: string;
  config: Config;
}

export function boot(k: Kernel, log: Log): never {
  const st: BootState = { phase: "mount API file systems", config: defaultConfig() };
  try {
    mountApiFilesystems(k);
    log.openKmsg();
    st.phase = "read the kernel command line";
    const cmdline = readText(k, "/proc/cmdline").trim();
    const config = parseCmdline(cmdline);
    st.config = config;
    log.debugEnabled = config.debug;
    log.notice("version " + VERSION + ", pid " + k.getpid() + ", kernel command line: " + cmdline);
    if (config.problems.length > 0) throw new Error("kernel command line: " + config.problems.join("; "));
    log.notice("nothing more to do: powering off");
    return finalAction(k, log, "poweroff", 0);
  } catch (e) {
    log.fatal("failed to " + st.phase + ": " + errorText(e));
    return finalAction(k, log, st.config.onFailure, st.config.failureDelayMs);
  }
}

const kernel = new LinuxKernel();
boot(kernel, new Log(kernel));
