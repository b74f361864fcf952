/**
 * The boot: enters the phases in order (runtime/phases.ts) and decides what is fatal. Every
 * failure ends in one line, "failed to <what the phase does>: <why>", and the configured
 * action; boot() never returns. runtime/init.ts calls it with the real kernel; tests call it
 * with FakeKernel.
 */
import { errorText, InitError } from "../lib/errors.js";
import { stubLoadsFrom } from "../lib/facts.js";
import { formatMs } from "../lib/numbers.js";
import { readSmallFile } from "../syscalls/files.js";
import { AtFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { parseCmdline } from "./cmdline.js";
import { Coldplug } from "./coldplug.js";
import type { Config } from "./cmdline.js";
import { readDdi, selectDdiPartitions } from "./ddi.js";
import type { DdiLayout } from "./ddi.js";
import { espName, espSelector, mountEsp, waitForEsp } from "./esp.js";
import type { Esp } from "./esp.js";
import { finalAction } from "./failure.js";
import { setDevkmsg } from "./log.js";
import type { Log } from "./log.js";
import { ModuleLoader } from "./modules.js";
import { mountApiFilesystems } from "./mount.js";
import { BootRun } from "./phases.js";
import { mountRoot, setUpRootDevice } from "./root_device.js";
import { chooseInit, initArgv, isSystemd, switchRoot, systemdStateFd } from "./switch_root.js";

/** Build facts: the bundler replaces the declared names; Node tests see the fallbacks. */
declare const STORAGE_INIT_VERSION: string | undefined;
declare const STORAGE_INIT_ARCH: string | undefined;
const VERSION = typeof STORAGE_INIT_VERSION === "undefined" ? "development" : STORAGE_INIT_VERSION;
/** The architecture whose partition types the DDI must have. */
export const ARCH = typeof STORAGE_INIT_ARCH === "undefined" ? "x86-64" : STORAGE_INIT_ARCH;

const ESP_MOUNT = "/esp";
const SYSROOT = "/sysroot";

/**
 * Mounts each candidate ESP in turn (phase esp) and reads the DDI on it (phase ddi); the first
 * whose DDI has the partitions this boot needs is the one, and stays mounted on ESP_MOUNT. With
 * roothash=, that is the DDI whose partition UUIDs match it: a stick or a cloned disk with an
 * ESP of its own cannot stop the boot, and cannot supply a root the hash does not pin. With one
 * candidate its failure is the boot's; with several, the failure names each one's reason.
 */
function openDdi(k: Kernel, log: Log, run: BootRun, loader: ModuleLoader, esps: Esp[], config: Config): DdiLayout {
  const reasons: string[] = [];
  for (const esp of esps) {
    // porffor: try-catch-stale-locals
    const at = { device: "" };
    try {
      run.enter("esp");
      at.device = mountEsp(k, log, loader, esp, ESP_MOUNT);
      run.enter("ddi", config.ddiPath + " on " + at.device);
      return selectDdiPartitions(readDdi(k, ESP_MOUNT + config.ddiPath), ARCH, config.rootHash, config.verityDisabled);
    } catch (e) {
      if (esps.length === 1) throw e;
      const why = espName(esp) + ": " + (at.device === "" ? "cannot mount it: " : "") + errorText(e);
      log.warn(why);
      reasons.push(why);
      if (at.device !== "") k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
    }
  }
  run.enter("ddi", config.ddiPath);
  throw new InitError("none of the " + esps.length + " ESPs holds a DDI this boot can use: " + reasons.join("; "));
}

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
    if (config.rootHash === undefined && !config.verityDisabled) {
      throw new InitError(
        "no roothash= on the kernel command line: refusing to boot an unverified root (systemd.verity=0 allows it)",
      );
    }

    const stub = stubLoadsFrom(config.ddiPath);
    if (stub !== undefined)
      log.warn(
        "storage_init.ddi=" + config.ddiPath + " lies " + stub + ": systemd-stub read all of it into memory; move it",
      );

    run.enter("coldplug");
    const loader = ModuleLoader.open(k, log, config.moduleParams);
    const sel = espSelector(k, log, config.esp, loader);
    const esps = waitForEsp(k, log, new Coldplug(k, log, loader), sel, config.timeoutMs);
    const ddi = openDdi(k, log, run, loader, esps, config);
    const ddiFile = ESP_MOUNT + config.ddiPath;

    run.enter("verity");
    const root = setUpRootDevice(k, log, loader, ddiFile, ddi, {
      options: config.verityOptions,
      allowWeakHash: config.allowWeakHash,
    });
    // The loop devices hold the image open; the ESP mount itself is no longer needed.
    k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);

    run.enter("mount", root.path);
    mountRoot(k, loader, root, SYSROOT, config.rootFsType, config.rootFlags);
    log.info("mounted " + root.path + " (" + config.rootFsType + ") on " + SYSROOT);

    run.enter("switch-root");
    const argvExtra = k.argv().slice(1);
    const envp = k.environ();
    // Hand the system the rate limit it had.
    if (devkmsg !== undefined) setDevkmsg(k, devkmsg);
    switchRoot(k, log, SYSROOT);
    const init = chooseInit(k, config.init);
    if (init.path === undefined) throw new InitError("no init in the new root (tried " + init.tried.join(", ") + ")");
    const ms = run.writeTimings();
    log.info(run.summary());
    log.notice("starting " + init.path + " after " + formatMs(ms) + " ms");
    const stateFd = isSystemd(init.path) ? systemdStateFd(k, log, run.startMs) : -1;
    return k.execve(init.path, initArgv(init.path, argvExtra, stateFd), envp);
  } catch (e) {
    log.fatal("failed to " + run.doing() + ": " + errorText(e));
    return finalAction(k, log, run.config.onFailure, run.config.failureDelayMs);
  }
}
