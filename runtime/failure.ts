/**
 * The deliberate end of a failed boot. PID 1 must never exit (the kernel would panic with no
 * explanation), so after the fatal line this waits the configured delay and then reboots,
 * powers off, halts, or runs an emergency shell (followed by a reboot when the shell ends).
 * If even that fails, it sleeps forever: a hung machine with a message beats a panic.
 */
import { errorText } from "../lib/errors.js";
import { formatMs } from "../lib/numbers.js";
import type { FailureAction } from "./cmdline.js";
import type { Log } from "./log.js";
import { OpenFlags, RebootCmd } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

/** Shells tried, in order, for on_failure=shell. */
export const SHELLS = ["/bin/sh", "/usr/bin/sh", "/bin/busybox"];

export function rebootCommand(action: FailureAction): number {
  if (action === "poweroff") return RebootCmd.POWER_OFF;
  if (action === "halt") return RebootCmd.HALT;
  return RebootCmd.RESTART;
}

function exists(k: Kernel, path: string): boolean {
  try {
    k.close(k.open(path, OpenFlags.RDONLY));
    return true;
  } catch (e) {
    return false;
  }
}

/** Runs the first shell found; returns when it exits, false when there is none. */
export function runShell(k: Kernel, log: Log): boolean {
  for (const sh of SHELLS) {
    if (!exists(k, sh)) continue;
    log.notice("starting emergency shell " + sh + "; the machine reboots when it exits");
    const pid = k.fork();
    if (pid === 0) {
      try {
        k.execve(sh, sh.endsWith("busybox") ? [sh, "sh"] : [sh], [
          "HOME=/",
          "TERM=linux",
          "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]);
      } catch (e) {
        log.error("emergency shell " + sh + ": " + errorText(e));
      }
      // The child must not return into PID 1's logic.
      for (;;) k.reboot(RebootCmd.RESTART);
    }
    k.wait(pid);
    return true;
  }
  log.error("on_failure=shell: no shell in the initramfs (tried " + SHELLS.join(", ") + "); rebooting instead");
  return false;
}

/** Carries out `action` after `delayMs`. Never returns. */
export function finalAction(k: Kernel, log: Log, action: FailureAction, delayMs: number): never {
  // Read in catch, so kept in an object (porffor: try-catch-stale-locals).
  const st = { action, delayMs };
  try {
    if (st.action === "shell") {
      runShell(k, log);
      st.action = "reboot";
      st.delayMs = 0;
    }
    if (st.delayMs > 0) {
      log.notice(st.action + " in " + formatMs(st.delayMs / 1000) + " s");
      k.sleep(st.delayMs);
    }
    log.notice(st.action === "poweroff" ? "powering off" : st.action === "halt" ? "halting" : "rebooting");
    try {
      k.sync();
    } catch (e) {
      // Nothing was written that a failed sync could lose: every file system we mount is read-only.
    }
    k.reboot(rebootCommand(st.action));
  } catch (e) {
    log.fatal("cannot " + st.action + ": " + errorText(e) + "; halting here");
  }
  for (;;) k.sleep(3600000);
}
