/**
 * The boot: enters the phases in order (runtime/phases.ts) and decides what is fatal. Every
 * failure ends in one line, "failed to <what the phase does>: <why>", and the configured
 * action; boot() never returns. runtime/init.ts calls it with the real kernel; tests call it
 * with FakeKernel.
 */
import { errorText, InitError, ParseError } from "../lib/errors.js";
import { stubLoadsFrom } from "../lib/facts.js";
import { formatMs } from "../lib/numbers.js";
import { readSmallFile } from "../syscalls/files.js";
import { AtFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { parseCmdline } from "./cmdline.js";
import { Coldplug } from "./coldplug.js";
import type { Config } from "./cmdline.js";
import { readDdiLayout } from "./ddi.js";
import { espName, espSelector, mountEsp, waitForEsp } from "./esp.js";
import type { Esp } from "./esp.js";
import { finalAction } from "./failure.js";
import { setDevkmsg } from "./log.js";
import type { Log } from "./log.js";
import { ModuleLoader } from "./modules.js";
import { mountApiFilesystems } from "./mount.js";
import { BootRun } from "./phases.js";
import { mountRoot, setUpRootDevice } from "./root_device.js";
import type { RootDevice } from "./root_device.js";
import { isVpickDir, readVpickDir } from "./vpick.js";
import type { Candidate } from "./vpick.js";
import { chooseInit, initArgv, isSystemd, switchRoot, systemdStateFd } from "./switch_root.js";

/** Build facts: the bundler replaces the declared names; Node tests see the fallbacks. */
declare const STORAGE_INIT_VERSION: string | undefined;
declare const STORAGE_INIT_ARCH: string | undefined;
const VERSION = typeof STORAGE_INIT_VERSION === "undefined" ? "development" : STORAGE_INIT_VERSION;
/** The architecture whose partition types the DDI must have. */
export const ARCH = typeof STORAGE_INIT_ARCH === "undefined" ? "x86-64" : STORAGE_INIT_ARCH;

const ESP_MOUNT = "/esp";
const SYSROOT = "/sysroot";

/** A DDI tried: where it lies, and what was wrong with it. */
interface Attempt {
  label: string;
  reason: string;
}

/**
 * The entries of the vpick directory `path` on the mounted ESP; when it cannot be read and
 * `others` paths are named besides it, none, with a warning (ParseError or the errno otherwise).
 */
function vpickEntries(k: Kernel, log: Log, path: string, others: boolean): Candidate[] {
  try {
    return readVpickDir(k, ESP_MOUNT, path, ARCH, ".raw");
  } catch (e) {
    if (!others) throw e;
    log.warn(path + ": " + errorText(e));
    return [];
  }
}

/**
 * The DDIs storage_init.ddi= names on the mounted ESP, in the order to try them: each path as
 * given, each vpick directory's entries newest first (runtime/vpick.ts). Names passed over are
 * logged with the reason. Throws when a directory cannot be read.
 */
function ddiCandidates(k: Kernel, log: Log, config: Config): string[] {
  const out: string[] = [];
  for (const path of config.ddiPaths) {
    if (!isVpickDir(path)) {
      out.push(path);
      continue;
    }
    const found = vpickEntries(k, log, path, config.ddiPaths.length > 1);
    let usable = 0;
    for (const c of found) {
      if (c.skipped !== "") log.info("passed over " + c.path + ": " + c.skipped);
      else {
        out.push(c.path);
        usable++;
      }
    }
    log.info(
      path +
        ": " +
        usable +
        " candidate" +
        (usable === 1 ? "" : "s") +
        (usable > 0 ? ", newest first: " + out.slice(out.length - usable).join(", ") : ""),
    );
    if (usable === 0 && config.ddiPaths.length === 1) throw new ParseError("vpick", path + " holds no DDI for " + ARCH);
  }
  return out;
}

/** What openRoot() tries and has tried: the candidates passed over, and whether there is only one. */
interface Trial {
  tried: Attempt[];
  /** One ESP, and one DDI on it: its failure is the boot's. */
  single: boolean;
}

/**
 * The DDI at `path` on the ESP mounted from `device`: phase ddi (its partitions and signature)
 * and phase verity (the verified device). Returns the root device, or undefined when the DDI
 * was passed over (logged, and added to `trial.tried`). The catch block reads only parameters
 * (porffor: try-catch-stale-locals).
 */
function tryDdi(
  k: Kernel,
  log: Log,
  run: BootRun,
  loader: ModuleLoader,
  config: Config,
  device: string,
  path: string,
  label: string,
  trial: Trial,
): RootDevice | undefined {
  try {
    run.enter("ddi", path + " on " + device);
    const ddiFile = ESP_MOUNT + path;
    const want = { policy: config.rootPolicy, rootHash: config.rootHash, verityDisabled: config.verityDisabled };
    const ddi = readDdiLayout(k, ddiFile, ARCH, want);
    run.enter("verity");
    const root = setUpRootDevice(k, log, loader, ddiFile, ddi, {
      options: config.verityOptions,
      allowWeakHash: config.allowWeakHash,
      signatureRequired: config.rootPolicy === "signed",
    });
    const after = trial.tried.length;
    log.notice("root from " + path + " on " + device + (after > 0 ? " after " + after + " passed over" : ""));
    return root;
  } catch (e) {
    if (trial.single) throw e;
    log.warn("passed over " + label + ": " + errorText(e));
    trial.tried.push({ label, reason: errorText(e) });
    return undefined;
  }
}

/**
 * Mounts `esp` on ESP_MOUNT (phase esp) and tries each DDI the command line names on it, in
 * order; returns the first root device, the ESP left mounted, or undefined with the ESP
 * unmounted and the reasons in `trial.tried`. With one ESP and one DDI, its failure is thrown.
 */
function tryEsp(
  k: Kernel,
  log: Log,
  run: BootRun,
  loader: ModuleLoader,
  config: Config,
  esp: Esp,
  espCount: number,
  trial: Trial,
): RootDevice | undefined {
  const mounted = { device: "" };
  if (!mountOrRecord(k, log, run, loader, esp, espCount, trial, mounted)) return undefined;
  const paths = candidatesOrRecord(k, log, run, config, esp, mounted.device, espCount, trial);
  if (paths !== undefined) {
    trial.single = espCount === 1 && paths.length === 1;
    for (const path of paths) {
      const label = espCount > 1 && paths.length === 1 ? espName(esp) : espName(esp) + " " + path;
      const root = tryDdi(k, log, run, loader, config, mounted.device, path, label, trial);
      if (root !== undefined) return root;
    }
  }
  k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
  return undefined;
}

/** Mounts `esp` (phase esp); false, with the reason recorded, when it cannot be (thrown with one ESP). */
function mountOrRecord(
  k: Kernel,
  log: Log,
  run: BootRun,
  loader: ModuleLoader,
  esp: Esp,
  espCount: number,
  trial: Trial,
  mounted: { device: string },
): boolean {
  try {
    run.enter("esp");
    mounted.device = mountEsp(k, log, loader, esp, ESP_MOUNT);
    return true;
  } catch (e) {
    if (espCount === 1) throw e;
    log.warn(espName(esp) + ": cannot mount it: " + errorText(e));
    trial.tried.push({ label: espName(esp), reason: "cannot mount it: " + errorText(e) });
    return false;
  }
}

/** The DDIs to try on the mounted ESP; undefined, with the reason recorded, when they cannot be listed (thrown with one ESP). */
function candidatesOrRecord(
  k: Kernel,
  log: Log,
  run: BootRun,
  config: Config,
  esp: Esp,
  device: string,
  espCount: number,
  trial: Trial,
): string[] | undefined {
  try {
    const paths = ddiCandidates(k, log, config);
    if (paths.length === 0) throw new ParseError("vpick", "no DDI to try");
    return paths;
  } catch (e) {
    // The boot's failure is then the DDI's, not the ESP's.
    if (espCount === 1) {
      run.enter("ddi", config.ddiPaths.join(",") + " on " + device);
      throw e;
    }
    log.warn(espName(esp) + ": " + errorText(e));
    trial.tried.push({ label: espName(esp), reason: errorText(e) });
    return undefined;
  }
}

/**
 * Mounts each candidate ESP in turn (phase esp), and on it tries each DDI the command line
 * names (phase ddi: its partitions and signature; phase verity: the verified device); the first
 * that yields a verified root device is the one, and its ESP stays mounted on ESP_MOUNT. With
 * roothash=, only the DDI whose partition UUIDs match it can: a stick, a cloned disk or an A/B
 * sibling cannot supply a root the hash does not pin. With signatures, the newest DDI whose
 * signature the kernel accepts wins, and an older one is taken when it does not. With one
 * candidate in all, its failure is the boot's; otherwise the failure names each one's reason.
 */
function openRoot(k: Kernel, log: Log, run: BootRun, loader: ModuleLoader, esps: Esp[], config: Config): RootDevice {
  const trial: Trial = { tried: [], single: false };
  for (const esp of esps) {
    const root = tryEsp(k, log, run, loader, config, esp, esps.length, trial);
    if (root !== undefined) return root;
  }
  run.enter("ddi", config.ddiPaths.join(","));
  const reasons: string[] = [];
  for (const t of trial.tried) reasons.push(t.label + ": " + t.reason);
  const what =
    esps.length > 1
      ? "none of the " + esps.length + " ESPs holds a DDI this boot can use: "
      : "none of the " + trial.tried.length + " DDIs is usable: ";
  throw new InitError(what + reasons.join("; "));
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
    if (config.rootHash === undefined && !config.verityDisabled && config.rootPolicy !== "signed") {
      throw new InitError(
        "no roothash= on the kernel command line: refusing to boot an unverified root (storage_init.root_policy=signed takes the root hash from a signed DDI; systemd.verity=0 boots without verification)",
      );
    }

    for (const path of config.ddiPaths) {
      const stub = stubLoadsFrom(path);
      if (stub !== undefined)
        log.warn("storage_init.ddi=" + path + " lies " + stub + ": systemd-stub read all of it into memory; move it");
    }

    run.enter("coldplug");
    const loader = ModuleLoader.open(k, log, config.moduleParams);
    const sel = espSelector(k, log, config.esp, loader);
    const esps = waitForEsp(k, log, new Coldplug(k, log, loader), sel, config.timeoutMs);
    const root = openRoot(k, log, run, loader, esps, config);
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
