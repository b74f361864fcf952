/**
 * The search for the root: every candidate ESP in turn (phase esp), and on it every DDI the
 * command line names (phase ddi: its partitions and signature; phase verity: the verified
 * device; phase mount: the root mounted, its init found, its image version read and checked).
 * A DDI is taken only once all of that holds; one that fails is released (unmounted, its dm
 * device removed, its loop devices let go), recorded with its reason, and the next is tried.
 * With one candidate in all, its failure is the boot's own line.
 *
 * What may win: with roothash=, only the DDI whose partition UUIDs match it (a stick, a cloned
 * disk or an A/B sibling cannot supply a root the hash does not pin); with the signed policy,
 * the newest DDI whose signature the kernel accepts, its version the image's own (IMAGE_VERSION=
 * read through dm-verity), never its file name's; with a floor (storage_init.min_version=),
 * nothing older.
 */
import { errorText, InitError, ParseError } from "../lib/errors.js";
import { jsonString } from "../lib/quote.js";
import { AtFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { ARCH } from "./build_facts.js";
import type { Config } from "./cmdline.js";
import { readDdiLayout } from "./ddi.js";
import { espName, mountEsp } from "./esp.js";
import type { Esp } from "./esp.js";
import type { Log } from "./log.js";
import type { ModuleLoader } from "./modules.js";
import type { BootRun } from "./phases.js";
import { chooseInit, readImageVersion } from "./root_files.js";
import type { ImageVersion } from "./root_files.js";
import { mountRoot, releaseRoot, setUpRootDevice } from "./root_device.js";
import type { RootDevice } from "./root_device.js";
import { imageVersionRefusal, isVpickDir, readVpickDir } from "./vpick.js";

/** Where the candidate ESP is mounted while its DDIs are tried. */
export const ESP_MOUNT = "/esp";
/** Where the candidate root is mounted; the chosen one is switched into. */
export const SYSROOT = "/sysroot";

/** What the search works with, built once by boot(). */
export interface RootSearch {
  k: Kernel;
  log: Log;
  run: BootRun;
  loader: ModuleLoader;
  config: Config;
}

/** A candidate passed over: which, and why. */
export interface Refusal {
  label: string;
  reason: string;
}

/** The root the search took, mounted on SYSROOT, with what the booted system is told of it. */
export interface FoundRoot {
  device: RootDevice;
  /** The ESP it came from: its name for messages, the device mounted, its GPT PARTUUID. */
  esp: string;
  espDevice: string;
  espPartUuid: string;
  /** The DDI's path on the ESP. */
  path: string;
  version: ImageVersion;
  /** The init to execute, a path inside the root. */
  init: string;
  passedOver: Refusal[];
}

/** A DDI to try: its path on the ESP, and the version its vpick name claims (undefined for a plain path). */
interface DdiCandidate {
  path: string;
  claimed: string | undefined;
}

/**
 * Runs `fn`; when it throws, records the failure under `label` and returns undefined, unless
 * `only` (the one candidate there is), when the failure is the boot's and is thrown. The one
 * catch site of the search: it reads only its parameters (porffor: try-catch-stale-locals).
 */
function attempt<T>(s: RootSearch, refused: Refusal[], label: string, only: boolean, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (only) throw e;
    s.log.warn("passed over " + label + ": " + errorText(e));
    refused.push({ label, reason: errorText(e) });
    return undefined;
  }
}

/**
 * The DDIs storage_init.ddi= names on the mounted ESP, in the order to try them: each path as
 * given, each vpick directory's entries newest first (runtime/vpick.ts), names passed over
 * logged with the reason. A directory that cannot be read is passed over with a warning when
 * other paths are named; alone, its failure is thrown, as is an empty list.
 */
function ddiCandidates(s: RootSearch, refused: Refusal[]): DdiCandidate[] {
  const { k, log, config } = s;
  const out: DdiCandidate[] = [];
  const alone = config.ddiPaths.length === 1;
  for (const path of config.ddiPaths) {
    if (!isVpickDir(path)) {
      out.push({ path, claimed: undefined });
      continue;
    }
    const found = attempt(s, refused, path, alone, () => readVpickDir(k, ESP_MOUNT, path, ARCH, ".raw"));
    if (found === undefined) continue;
    const names: string[] = [];
    for (const c of found) {
      if (c.skipped !== "") log.info("passed over " + c.path + ": " + c.skipped);
      else {
        out.push({ path: c.path, claimed: c.entry === undefined ? undefined : c.entry.version });
        names.push(c.path);
      }
    }
    log.info(
      path +
        ": " +
        names.length +
        " candidate" +
        (names.length === 1 ? "" : "s") +
        (names.length > 0 ? ", newest first: " + names.join(", ") : ""),
    );
    if (names.length === 0 && alone) throw new ParseError("vpick", path + " holds no DDI for " + ARCH);
  }
  if (out.length === 0) throw new ParseError("vpick", "no DDI to try");
  return out;
}

/**
 * The DDI `c` on the ESP mounted from `device`: its partitions (phase ddi), the verified device
 * (phase verity), and the root mounted and checked (phase mount).
 */
function activate(s: RootSearch, device: string, c: DdiCandidate): FoundRoot {
  const { k, log, run, loader, config } = s;
  run.enter("ddi", c.path + " on " + device);
  const ddiFile = ESP_MOUNT + c.path;
  const ddi = readDdiLayout(k, ddiFile, ARCH, {
    policy: config.rootPolicy,
    rootHash: config.rootHash,
    verityDisabled: config.verityDisabled,
  });
  run.enter("verity");
  const root = setUpRootDevice(k, log, loader, ddiFile, ddi, {
    options: config.verityOptions,
    allowWeakHash: config.allowWeakHash,
    signatureRequired: config.rootPolicy === "signed",
  });
  run.enter("mount", root.path);
  const found: FoundRoot = {
    device: root,
    esp: "",
    espDevice: device,
    espPartUuid: "",
    path: c.path,
    version: { version: "", file: "" },
    init: "",
    passedOver: [],
  };
  settleOrRelease(s, c, found, { mountedOn: "" });
  return found;
}

/**
 * Mounts the root on SYSROOT, finds its init and reads its version into `found`; a root that
 * fails any of it is released (`at` says whether it was mounted). The catch block reads only
 * parameters (porffor: try-catch-stale-locals).
 */
function settleOrRelease(s: RootSearch, c: DdiCandidate, found: FoundRoot, at: { mountedOn: string }): void {
  try {
    settle(s, c, found, at);
  } catch (e) {
    releaseRoot(s.k, s.log, found.device, at.mountedOn);
    throw e;
  }
}

function settle(s: RootSearch, c: DdiCandidate, found: FoundRoot, at: { mountedOn: string }): void {
  const { k, log, loader, config } = s;
  mountRoot(k, loader, found.device, SYSROOT, config.rootFsType, config.rootFlags);
  at.mountedOn = SYSROOT;
  log.info("mounted " + found.device.path + " (" + config.rootFsType + ") on " + SYSROOT);
  const init = chooseInit(k, SYSROOT, config.init);
  if (init.path === undefined) throw new InitError("no init in the root (tried " + init.tried.join(", ") + ")");
  found.init = init.path;
  found.version = readImageVersion(k, SYSROOT);
  const v = found.version.version;
  const refusal = imageVersionRefusal(config.rootPolicy === "signed", c.claimed, v, config.minVersion);
  if (refusal !== "") throw new InitError(refusal);
  // Pinned by roothash=, the image is the one the hash names whatever its file is called.
  if (c.claimed !== undefined && v !== "" && c.claimed !== v)
    log.warn(c.path + ": its name says version " + c.claimed + ", the image says IMAGE_VERSION=" + v);
}

/**
 * The ESP `esp` mounted on ESP_MOUNT (phase esp), and the first of its DDIs that yields a root;
 * undefined, with the ESP unmounted and the reasons in `refused`, when none does.
 */
function searchEsp(s: RootSearch, esp: Esp, oneEsp: boolean, refused: Refusal[]): FoundRoot | undefined {
  const { k, log, run, loader, config } = s;
  const name = espName(esp);
  const device = attempt(s, refused, name, oneEsp, () => {
    run.enter("esp");
    return mountEsp(k, log, loader, esp, ESP_MOUNT);
  });
  if (device === undefined) return undefined;
  // A list that cannot be made is the DDI's failure, not the ESP's.
  run.failIn("ddi", config.ddiPaths.join(",") + " on " + device);
  const list = attempt(s, refused, name, oneEsp, () => ddiCandidates(s, refused));
  if (list !== undefined) {
    const only = oneEsp && list.length === 1;
    for (const c of list) {
      const label = !oneEsp && list.length === 1 ? name : name + " " + c.path;
      const found = attempt(s, refused, label, only, () => activate(s, device, c));
      if (found !== undefined) {
        found.esp = name;
        found.espPartUuid = esp.partUuid;
        return found;
      }
    }
  }
  k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
  return undefined;
}

/**
 * Tries each candidate ESP in turn, and on each the DDIs the command line names, in order; the
 * first DDI whose root is verified, mounted and checked is taken, its ESP left mounted on
 * ESP_MOUNT. Throws the one candidate's failure when there is one, or a failure naming each
 * candidate's reason.
 */
export function findRoot(s: RootSearch, esps: Esp[]): FoundRoot {
  const refused: Refusal[] = [];
  const oneEsp = esps.length === 1;
  for (const esp of esps) {
    const found = searchEsp(s, esp, oneEsp, refused);
    if (found === undefined) continue;
    found.passedOver = refused;
    const v = found.version.version;
    s.log.notice(
      "root from " +
        found.path +
        " on " +
        found.espDevice +
        (v !== "" ? " (version " + v + ")" : "") +
        (refused.length > 0 ? " after " + refused.length + " passed over" : ""),
    );
    return found;
  }
  s.run.failIn("ddi", s.config.ddiPaths.join(","));
  const reasons: string[] = [];
  for (const r of refused) reasons.push(r.label + ": " + r.reason);
  const what =
    esps.length > 1
      ? "none of the " + esps.length + " ESPs holds a DDI this boot can use: "
      : "none of the " + refused.length + " DDIs is usable: ";
  throw new InitError(what + reasons.join("; "));
}

/** Where the booted system finds what was chosen (/run moves into the new root). */
export const ROOT_RECORD = "/run/storage-init/root.json";

/**
 * What was chosen, for the booted system (ROOT_RECORD): the ESP (device, PARTUUID), the DDI's
 * path, the image's version and which file said it, the root hash dm-verity checks, whether the
 * kernel accepted its signature, the policy and floor, the init, and each candidate passed over
 * with its reason. Written by hand (porffor: json-stringify-wide).
 */
export function rootRecord(found: FoundRoot, config: Config): string {
  const passed: string[] = [];
  for (const r of found.passedOver)
    passed.push('{"label":' + jsonString(r.label) + ',"reason":' + jsonString(r.reason) + "}");
  const d = found.device;
  return (
    '{"esp":{"device":' +
    jsonString(found.espDevice) +
    ',"partUuid":' +
    jsonString(found.espPartUuid) +
    '},"path":' +
    jsonString(found.path) +
    ',"imageVersion":' +
    jsonString(found.version.version) +
    ',"versionFile":' +
    jsonString(found.version.file) +
    ',"verified":' +
    (d.verified ? "true" : "false") +
    ',"rootHash":' +
    jsonString(d.rootHash) +
    ',"signatureAccepted":' +
    (d.signed ? "true" : "false") +
    ',"policy":' +
    jsonString(config.verityDisabled ? "none" : config.rootPolicy) +
    ',"minVersion":' +
    jsonString(config.minVersion) +
    ',"init":' +
    jsonString(found.init) +
    ',"passedOver":[' +
    passed.join(",") +
    "]}\n"
  );
}
