/**
 * The search for the root: every ESP the selector matched in turn (phase esp), and on it every DDI the
 * command line names (phase ddi: its partitions and signature; phase verity: the verified
 * device; phase mount: the root mounted, its init found, its image version read and checked).
 * A DDI is taken only once all of that holds; one that fails is released (unmounted, its dm
 * device removed, its loop devices let go), recorded with its reason, and the next is tried.
 * With one candidate (a DDI on an ESP) in all, its failure is the boot's own line.
 *
 * What may win: with roothash=, only the DDI whose partition UUIDs match it (a stick, a cloned
 * disk or an A/B sibling cannot supply a root the hash does not pin); with the signed policy,
 * the newest DDI whose signature the kernel accepts, its version the image's own (IMAGE_VERSION=
 * read through dm-verity), never its file name's; with a floor (storage_init.min_version=),
 * nothing older.
 */
import { errorText, InitError, ParseError } from "../lib/errors.js";
import { jsonString } from "../lib/quote.js";
import { readAttr } from "../syscalls/files.js";
import { AtFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { ARCH } from "./build_facts.js";
import type { Config } from "./cmdline.js";
import { readDdiLayout, rootWant } from "./ddi.js";
import { espName, mountEsp } from "./esp.js";
import type { Esp } from "./esp.js";
import type { Log } from "./log.js";
import type { ModuleLoader } from "./modules.js";
import type { BootRun } from "./phases.js";
import { readImageVersion, requireInit, secondStage } from "./root_files.js";
import type { ImageVersion } from "./root_files.js";
import { mountRoot, releaseRoot, setUpRootDevice } from "./root_device.js";
import type { RootDevice } from "./root_device.js";
import { compareVersions, imageVersionRefusal, imageVersionWarning, listDdis } from "./vpick.js";
import type { DdiName } from "./vpick.js";

/**
 * Where an ESP is mounted while its DDIs are tried. The chosen one stays mounted
 * (read-only, nodev, nosuid, noexec): /run moves into the new root, and with it this mount, so
 * the booted system finds the ESP it booted from here and can `mount -o remount,rw` it to
 * install the next DDI (its superblock is read-only while the loop devices hold the DDI, so a
 * second read-write mount of the partition would fail with EBUSY).
 */
export const ESP_MOUNT = "/run/storage-init/esp";
/** Where a root is mounted while it is checked; the chosen one is switched into. */
export const SYSROOT = "/sysroot";

/** What the search works with, built once by boot(). */
export interface RootSearch {
  k: Kernel;
  log: Log;
  run: BootRun;
  loader: ModuleLoader;
  config: Config;
}

/** What was passed over (an ESP, a vpick directory, a DDI on an ESP), and why. */
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
  /** A second stage: the image is a systemd initrd (isInitrdImage()), which unlocks and mounts the final root itself. */
  secondStage: boolean;
  passedOver: Refusal[];
}

/**
 * Runs `fn`; when it throws, records the failure under `label` and returns undefined, unless
 * `only` (the one candidate there is), when the failure is the boot's and is thrown. The one
 * place the search decides what a failure means (settleOrRelease() only releases and rethrows);
 * its catch reads only its parameters (porffor: try-catch-stale-locals).
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
 * The DDI `c` on the ESP mounted from `device`: its partitions (phase ddi), the verified device
 * (phase verity), and the root mounted and checked (phase mount).
 */
function activate(s: RootSearch, device: string, c: DdiName): FoundRoot {
  const { k, log, run, loader, config } = s;
  run.enter("ddi", c.path + " on " + device);
  const ddiFile = ESP_MOUNT + c.path;
  const ddi = readDdiLayout(k, ddiFile, ARCH, rootWant(config));
  run.enter("verity");
  const root = setUpRootDevice(k, log, loader, ddiFile, ddi, {
    options: config.verityOptions,
    allowWeakHash: config.allowWeakHash,
    signatureRequired: config.rootPolicy === "signed",
    certificates: config.certificateFingerprints,
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
    secondStage: false,
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
function settleOrRelease(s: RootSearch, c: DdiName, found: FoundRoot, at: { mountedOn: string }): void {
  try {
    settle(s, c, found, at);
  } catch (e) {
    releaseRoot(s.k, s.log, found.device, at.mountedOn);
    throw e;
  }
}

function settle(s: RootSearch, c: DdiName, found: FoundRoot, at: { mountedOn: string }): void {
  const { k, log, loader, config } = s;
  mountRoot(k, loader, found.device, SYSROOT, config.rootFsType, config.rootFlags);
  at.mountedOn = SYSROOT;
  log.info("mounted " + found.device.path + " (" + config.rootFsType + ") on " + SYSROOT);
  found.init = requireInit(k, SYSROOT, config.init);
  found.version = readImageVersion(k, SYSROOT);
  const v = found.version.version;
  const refusal = imageVersionRefusal(config.rootPolicy === "signed", c.claimed, v, config.minVersion);
  if (refusal !== "") throw new InitError(refusal);
  const warning = imageVersionWarning(c.claimed, v);
  if (warning !== "") log.warn(c.path + ": " + warning);
  found.secondStage = secondStage(k, SYSROOT, config.secondStage);
}

/** The most partitions the ESP's selector may match: more is refused rather than chosen among. */
export const MAX_ESPS = 8;
/** The most DDIs one boot activates. */
export const MAX_TRIES = 16;

/** How far the search has gone: what was passed over, how many DDIs were activated, until when it may go on. */
interface Progress {
  refused: Refusal[];
  tries: number;
  deadlineMs: number;
}

/** A candidate: a DDI on an ESP, in the order of the ESPs and of the command line. */
interface Candidate {
  esp: Esp;
  c: DdiName;
  /** Its place in that order, which breaks ties between equal versions. */
  order: number;
}

/**
 * Why no more DDIs may be activated ("" while they may): the search's bounds, MAX_TRIES
 * activations and storage_init.timeout from its start, against ESPs that offer DDIs without end.
 */
function exhausted(s: RootSearch, progress: Progress): string {
  if (progress.tries >= MAX_TRIES) return "at most " + MAX_TRIES + " DDIs are activated in one boot";
  if (s.k.monotonicMs() > progress.deadlineMs) return "the search ran past storage_init.timeout";
  return "";
}

/**
 * Whether the search may activate the DDI `label`; when its bounds are spent (exhausted()), it
 * stops there: `label` and what follows it are recorded as not tried.
 */
function mayTry(s: RootSearch, progress: Progress, label: string): boolean {
  const why = exhausted(s, progress);
  if (why === "") return true;
  s.log.warn("passed over " + label + " and what follows it: not tried: " + why);
  progress.refused.push({ label, reason: "not tried: " + why });
  return false;
}

/** An ESP mounted on ESP_MOUNT, and the device it was mounted from. */
interface MountedEsp {
  esp: Esp;
  device: string;
}

/** Mounts `esp` on ESP_MOUNT (phase esp); undefined, with the reason recorded, when it cannot be (thrown when `only`). */
function openEsp(s: RootSearch, esp: Esp, only: boolean, progress: Progress): MountedEsp | undefined {
  const device = attempt(s, progress.refused, espName(esp), only, () => {
    s.run.enter("esp");
    return mountEsp(s.k, s.log, s.loader, esp, ESP_MOUNT);
  });
  return device === undefined ? undefined : { esp, device };
}

/**
 * The DDIs to try on the mounted ESP (listDdis(), which the check shares); undefined, with the
 * reason recorded, when there are none.
 */
function listCandidates(s: RootSearch, at: MountedEsp, only: boolean, progress: Progress): DdiName[] | undefined {
  // A list that cannot be made is the DDI's failure, not the ESP's.
  s.run.failIn("ddi", s.config.ddiPaths.join(",") + " on " + at.device);
  return attempt(s, progress.refused, espName(at.esp), only, () =>
    listDdis(s.k, ESP_MOUNT, s.config.ddiPaths, ARCH, s.log, progress.refused),
  );
}

/** Activates the DDI `c` on the mounted ESP (activate()), counted against the search's bounds. */
function tryCandidate(
  s: RootSearch,
  at: MountedEsp,
  c: DdiName,
  label: string,
  only: boolean,
  progress: Progress,
): FoundRoot | undefined {
  progress.tries++;
  const found = attempt(s, progress.refused, label, only, () => activate(s, at.device, c));
  if (found !== undefined) {
    found.esp = espName(at.esp);
    found.espPartUuid = at.esp.partUuid;
  }
  return found;
}

/**
 * Each ESP in turn, and on it each DDI in the command line's order: the first whose root is
 * verified, mounted and checked is taken, its ESP left mounted. The rule of roothash=, where
 * only the pinned DDI can be taken wherever it lies (a clone or a stick can only delay it).
 */
function firstRoot(s: RootSearch, esps: Esp[], progress: Progress): FoundRoot | undefined {
  const oneEsp = esps.length === 1;
  for (const esp of esps) {
    const at = openEsp(s, esp, oneEsp, progress);
    if (at === undefined) continue;
    const list = listCandidates(s, at, oneEsp, progress);
    for (const c of list ?? []) {
      if (!mayTry(s, progress, espName(esp) + " " + c.path)) break;
      const label = !oneEsp && list?.length === 1 ? espName(esp) : espName(esp) + " " + c.path;
      const found = tryCandidate(s, at, c, label, oneEsp && list?.length === 1, progress);
      if (found !== undefined) return found;
    }
    s.k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
  }
  return undefined;
}

/** The order of the signed policy across ESPs: newest claimed version first, then ESP and list order. */
function newerFirst(a: Candidate, b: Candidate): number {
  const v = compareVersions(b.c.claimed ?? "", a.c.claimed ?? "");
  return v !== 0 ? v : a.order - b.order;
}

/**
 * The signed policy with several ESPs (a clone of the ESP, a stick carrying its PARTUUID): the
 * newest image version among them all wins, not the first ESP in disk order. Every ESP's DDIs
 * are listed; a DDI named without a version (a plain path) is activated once to read its
 * version and released; then the DDIs are tried newest first, each checked as always (a name
 * must say the image's version).
 */
function newestRoot(s: RootSearch, esps: Esp[], progress: Progress): FoundRoot | undefined {
  const all: Candidate[] = [];
  for (const esp of esps) {
    const at = openEsp(s, esp, false, progress);
    if (at === undefined) continue;
    const list = listCandidates(s, at, false, progress);
    for (const c of list ?? []) {
      if (c.claimed !== undefined) {
        all.push({ esp, c, order: all.length });
        continue;
      }
      if (exhausted(s, progress) !== "") break;
      // Its version is in the image: activated once to read it, then released.
      const probe = tryCandidate(s, at, c, espName(esp) + " " + c.path, false, progress);
      if (probe === undefined) continue;
      releaseRoot(s.k, s.log, probe.device, SYSROOT);
      if (probe.version.version === "")
        progress.refused.push({
          label: espName(esp) + " " + c.path,
          reason: "the image carries no IMAGE_VERSION=, by which the newest of several ESPs is chosen",
        });
      else all.push({ esp, c: { path: c.path, claimed: probe.version.version }, order: all.length });
    }
    s.k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
  }
  all.sort(newerFirst);
  let mounted: MountedEsp | undefined;
  for (const e of all) {
    if (!mayTry(s, progress, espName(e.esp) + " " + e.c.path)) break;
    if (mounted === undefined || mounted.esp !== e.esp) {
      if (mounted !== undefined) s.k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
      mounted = openEsp(s, e.esp, false, progress);
      if (mounted === undefined) continue;
    }
    const found = tryCandidate(s, mounted, e.c, espName(e.esp) + " " + e.c.path, false, progress);
    if (found !== undefined) return found;
  }
  if (mounted !== undefined) s.k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
  return undefined;
}

/** dm-verity's parameter that makes the kernel itself refuse a table without a signature it accepted. */
export const REQUIRE_SIGNATURES = "/sys/module/dm_verity/parameters/require_signatures";

/**
 * Under the signed policy, dm_verity loaded (storage_init.root_policy=signed gives it
 * require_signatures=1) and the parameter read back: a dm_verity built into the kernel, or loaded
 * before, took its parameters elsewhere, and without it the kernel would load an unsigned table
 * should this init ever ask. The search itself still refuses unsigned roots; the warning says
 * where the parameter belongs. The parameter cannot be set once dm_verity is loaded (0444).
 */
function checkRequireSignatures(s: RootSearch): void {
  s.loader.loadGroup("verity");
  const v = readAttr(s.k, REQUIRE_SIGNATURES);
  // A bool parameter: sysfs shows Y or N.
  if (v === "Y") return;
  s.log.warn(
    v === undefined
      ? "dm_verity has no require_signatures parameter (a kernel without CONFIG_DM_VERITY_VERIFY_ROOTHASH_SIG cannot check root signatures)"
      : "dm_verity runs with require_signatures=" +
          v +
          " (built in, or loaded before): put dm_verity.require_signatures=1 on the UKI's command line",
  );
}

/**
 * The root: with roothash= (or one ESP), the first DDI that yields a verified, mounted and
 * checked root, ESP by ESP (firstRoot()); with the signed policy and several ESPs, the newest
 * version among them all (newestRoot()). Its ESP is left mounted on ESP_MOUNT. Throws the one
 * candidate's failure when there is one, or a failure naming each reason.
 */
export function findRoot(s: RootSearch, esps: Esp[]): FoundRoot {
  if (esps.length > MAX_ESPS)
    throw new InitError(
      esps.length + " partitions match the ESP's selector; at most " + MAX_ESPS + " are considered: none is chosen",
    );
  if (esps.length > 1) {
    const names: string[] = [];
    for (const e of esps) names.push(espName(e));
    s.log.warn(
      esps.length +
        " partitions match the ESP's selector (" +
        names.join(", ") +
        "): " +
        (s.config.rootPolicy === "signed"
          ? "the newest image version among them is taken"
          : "only the DDI roothash= pins can be taken"),
    );
  }
  if (s.config.rootPolicy === "signed") checkRequireSignatures(s);
  const progress: Progress = { refused: [], tries: 0, deadlineMs: s.k.monotonicMs() + s.config.timeoutMs };
  const found =
    s.config.rootPolicy === "signed" && esps.length > 1 ? newestRoot(s, esps, progress) : firstRoot(s, esps, progress);
  const refused = progress.refused;
  if (found !== undefined) {
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
 * kernel accepted its signature, the policy and floor, the init, whether it is a second stage,
 * and what was passed over with its reason. Written by hand (porffor: json-stringify-wide).
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
    ',"signer":' +
    jsonString(d.signer) +
    ',"policy":' +
    jsonString(config.verityDisabled ? "none" : config.rootPolicy) +
    ',"minVersion":' +
    jsonString(config.minVersion) +
    ',"init":' +
    jsonString(found.init) +
    ',"secondStage":' +
    (found.secondStage ? "true" : "false") +
    ',"passedOver":[' +
    passed.join(",") +
    "]}\n"
  );
}
