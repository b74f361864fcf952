/**
 * The boot: enters the phases in order (runtime/phases.ts) and decides what is fatal. Every
 * failure ends in one line, "failed to <what the phase does>: <why>", and the configured
 * action; boot() never returns. runtime/init.ts calls it with the real kernel; tests call it
 * with FakeKernel.
 */
import { errorText, InitError } from "../lib/errors.js";
import { stubLoadsFrom } from "../lib/facts.js";
import { formatMs } from "../lib/numbers.js";
import { readSmallFile, writeSmallFile } from "../syscalls/files.js";
import type { Kernel } from "../syscalls/kernel.js";
import { parseCmdline, verificationRefusal } from "./cmdline.js";
import { Coldplug } from "./coldplug.js";
import { VERSION } from "./build_facts.js";
import { espSelector, waitForEsp } from "./esp.js";
import { finalAction } from "./failure.js";
import { setDevkmsg } from "./log.js";
import type { Log } from "./log.js";
import { ModuleLoader } from "./modules.js";
import { mkdirAll, mountApiFilesystems, parentDir } from "./mount.js";
import { BootRun } from "./phases.js";
import { execInit, releaseWhenUnmounted, stackOverlay } from "./root_device.js";
import { findRoot, ROOT_RECORD, rootRecord, SYSROOT } from "./root_search.js";
import { handOverExtra, initArgv, isSystemd, switchRoot, systemdStateFd } from "./switch_root.js";

export function boot(k: Kernel, log: Log): never {
  const run = new BootRun(k, log);
  try {
    run.enter("api");
    mountApiFilesystems(k);
    log.openKmsg();
    const devkmsg = setDevkmsg(k, "on");

    run.enter("cmdline");
    const cmdline = readSmallFile(k, "/proc/cmdline", 65536).trim();
    const config = parseCmdline(cmdline);
    run.config = config;
    log.setDebug(config.debug);
    log.notice("version " + VERSION + ", pid " + k.getpid() + ", kernel command line: " + cmdline);
    if (config.problems.length > 0) throw new InitError("kernel command line: " + config.problems.join("; "));
    const unverified = verificationRefusal(config);
    if (unverified !== "") throw new InitError(unverified);

    for (const path of config.ddiPaths) {
      const stub = stubLoadsFrom(path);
      if (stub !== undefined)
        log.warn("storage_init.ddi=" + path + " lies " + stub + ": systemd-stub read all of it into memory; move it");
    }

    run.enter("coldplug");
    const loader = ModuleLoader.open(k, log, config.moduleParams);
    // The ESPs, found only when the search comes to them (a DDI in memory needs no disk).
    const espsOf = (also: string) => {
      if (run.phase !== "coldplug") run.enter("coldplug");
      const sel = espSelector(k, log, config.esp, loader);
      return waitForEsp(k, log, new Coldplug(k, log, loader), sel, config.timeoutMs, also);
    };
    const root = findRoot({ k, log, run, loader, config }, espsOf);

    run.enter("switch-root");
    const argvExtra = k.argv().slice(1);
    const envp = k.environ();
    // Hand the system the rate limit it had.
    if (devkmsg !== undefined) setDevkmsg(k, devkmsg);
    // In /run, which moves into the new root: what was chosen, for the booted system.
    mkdirAll(k, parentDir(ROOT_RECORD), 0o755);
    writeSmallFile(k, ROOT_RECORD, rootRecord(root, config), 0o644);
    if (root.secondStage) {
      stackOverlay(k, loader, SYSROOT);
      releaseWhenUnmounted(k, root.device);
      const handed = handOverExtra(k, SYSROOT);
      log.info(
        "second stage: " +
          root.path +
          " under a tmpfs overlay on " +
          SYSROOT +
          ", " +
          handed +
          " files of /.extra handed over",
      );
    }
    switchRoot(k, log, SYSROOT, root.secondStage);
    const ms = run.writeTimings();
    log.info(run.summary());
    log.notice("starting " + root.init + " after " + formatMs(ms) + " ms");
    const stateFd = isSystemd(root.init) ? systemdStateFd(k, log, run.startMs) : -1;
    return execInit(k, root.init, initArgv(root.init, argvExtra, stateFd), envp);
  } catch (e) {
    log.fatal("failed to " + run.doing() + ": " + errorText(e));
    return finalAction(k, log, run.config.onFailure, run.config.failureDelayMs);
  }
}
