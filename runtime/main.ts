/**
 * The boot: enters the phases in order (runtime/phases.ts) and decides what is fatal. Every
 * failure ends in one line, "failed to <what the phase does>: <why>", and the configured
 * action; boot() never returns. runtime/init.ts calls it with the real kernel; tests call it
 * with FakeKernel.
 */
import { errorText, InitError } from "../lib/errors.js";
import { formatMs } from "../lib/numbers.js";
import { readSmallFile } from "../syscalls/files.js";
import { AtFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { parseCmdline } from "./cmdline.js";
import { Coldplug } from "./coldplug.js";
import { readDdi, selectDdiPartitions } from "./ddi.js";
import { espSelector, mountEsp, waitForEsp } from "./esp.js";
import { finalAction } from "./failure.js";
import { setDevkmsg } from "./log.js";
import type { Log } from "./log.js";
import { ModuleLoader } from "./modules.js";
import { mountApiFilesystems } from "./mount.js";
import { BootRun } from "./phases.js";
import { mountRoot, setUpRootDevice } from "./root_device.js";
import { chooseInit, initArgv, switchRoot } from "./switch_root.js";

/** Build facts: the bundler replaces the declared names; Node tests see the fallbacks. */
declare const STORAGE_INIT_VERSION: string | undefined;
declare const STORAGE_INIT_ARCH: string | undefined;
const VERSION = typeof STORAGE_INIT_VERSION === "undefined" ? "development" : STORAGE_INIT_VERSION;
/** The architecture whose partition types the DDI must have. */
const ARCH = typeof STORAGE_INIT_ARCH === "undefined" ? "x86-64" : STORAGE_INIT_ARCH;

const ESP_MOUNT = "/esp";
const SYSROOT = "/sysroot";

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

    run.enter("coldplug");
    const loader = ModuleLoader.open(k, log, config.moduleParams);
    const sel = espSelector(k, log, config.esp, loader);
    const esp = waitForEsp(k, log, new Coldplug(k, log, loader), sel, config.timeoutMs);

    run.enter("esp");
    const espDevice = mountEsp(k, log, loader, esp, ESP_MOUNT);

    run.enter("ddi", config.ddiPath + " on " + espDevice);
    const ddiFile = ESP_MOUNT + config.ddiPath;
    const ddi = selectDdiPartitions(readDdi(k, ddiFile), ARCH, config.rootHash, config.verityDisabled);

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
    return k.execve(init.path, initArgv(init.path, argvExtra), envp);
  } catch (e) {
    log.fatal("failed to " + run.doing() + ": " + errorText(e));
    return finalAction(k, log, run.config.onFailure, run.config.failureDelayMs);
  }
}
