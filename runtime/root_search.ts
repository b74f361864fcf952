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
import { MEMORY_DDI_DIR, memoryDdiPaths } from "../lib/facts.js";
import { jsonString } from "../lib/quote.js";
import { readAttr } from "../syscalls/files.js";
import { AtFlags, fileType, FileType } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { ARCH } from "./build_facts.js";
import type { Config, DdiSource } from "./cmdline.js";
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
  /** Where the DDI was: in the initramfs (MEMORY_DDI_DIR) or on an ESP. */
  source: DdiSource;
  /** The ESP it came from: its name for messages, the device mounted, its GPT PARTUUID ("" from memory). */
  esp: string;
  espDevice: string;
  espPartUuid: string;
  /** The DDI's path on the ESP, or under MEMORY_DDI_DIR. */
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
 * The DDI `c` in `place`: its partitions (phase ddi), the verified device (phase verity), and
 * the root mounted and checked (phase mount).
 */
function activate(s: RootSearch, place: Place, c: DdiName): FoundRoot {
  const { k, log, run, loader, config } = s;
  run.enter("ddi", shownPath(place, c) + placeSuffix(place));
  const ddiFile = place.base + c.path;
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
    source: place.esp === undefined ? "initrd" : "esp",
    esp: "",
    espDevice: place.device,
    espPartUuid: "",
    path: shownPath(place, c),
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

/**
 * Where DDIs are tried: an ESP mounted on ESP_MOUNT, or the initramfs's MEMORY_DDI_DIR. Its DDIs
 * are `paths` under `base`.
 */
interface Place {
  base: string;
  paths: string[];
  /** The ESP; undefined for the initramfs. */
  esp: Esp | undefined;
  /** The device the ESP was mounted from; "" for the initramfs. */
  device: string;
}

/** What names a place in messages: the ESP's device, or "the initramfs". */
function placeName(place: Place): string {
  return place.esp === undefined ? INITRAMFS : espName(place.esp);
}

/** What follows a DDI's path in a phase's text: " on <device>", " in the initramfs". */
function placeSuffix(place: Place): string {
  return place.esp === undefined ? " in " + INITRAMFS : " on " + place.device;
}

/** The path of `c` as the log and the booted system are told it: on the ESP, or in the initramfs's root. */
function shownPath(place: Place, c: DdiName): string {
  return place.esp === undefined ? place.base + c.path : c.path;
}

/** The initramfs, in messages. */
const INITRAMFS = "the initramfs";

/** Mounts `esp` on ESP_MOUNT (phase esp); undefined, with the reason recorded, when it cannot be (thrown when `only`). */
function openEsp(s: RootSearch, esp: Esp, only: boolean, progress: Progress): Place | undefined {
  const device = attempt(s, progress.refused, espName(esp), only, () => {
    s.run.enter("esp");
    return mountEsp(s.k, s.log, s.loader, esp, ESP_MOUNT);
  });
  return device === undefined ? undefined : { base: ESP_MOUNT, paths: s.config.ddiPaths, esp, device };
}

/**
 * The DDIs to try in `place` (listDdis(), which the check shares); undefined, with the reason
 * recorded, when there are none.
 */
function listCandidates(s: RootSearch, place: Place, only: boolean, progress: Progress): DdiName[] | undefined {
  // A list that cannot be made is the DDI's failure, not the ESP's.
  s.run.failIn("ddi", place.paths.join(",") + placeSuffix(place));
  return attempt(s, progress.refused, placeName(place), only, () =>
    listDdis(s.k, place.base, place.paths, ARCH, s.log, progress.refused),
  );
}

/** Activates the DDI `c` in `place` (activate()), counted against the search's bounds. */
function tryCandidate(
  s: RootSearch,
  place: Place,
  c: DdiName,
  label: string,
  only: boolean,
  progress: Progress,
): FoundRoot | undefined {
  progress.tries++;
  const found = attempt(s, progress.refused, label, only, () => activate(s, place, c));
  if (found !== undefined) {
    found.esp = place.esp === undefined ? "" : espName(place.esp);
    found.espPartUuid = place.esp === undefined ? "" : place.esp.partUuid;
  }
  return found;
}

/**
 * Each ESP of `esps` in turn, or with `memory` the initramfs's MEMORY_DDI_DIR alone (memoryPlace()),
 * and in it each DDI in the command line's order: the first whose root is verified, mounted and
 * checked is taken, its ESP left mounted. The rule of roothash=, where only the pinned DDI can be
 * taken wherever it lies (a clone or a stick can only delay it). `only`: there is one place, and
 * the failure of its one DDI is thrown.
 */
function firstRoot(
  s: RootSearch,
  esps: Esp[],
  memory: boolean,
  only: boolean,
  progress: Progress,
): FoundRoot | undefined {
  const count = memory ? 1 : esps.length;
  for (let i = 0; i < count; i++) {
    const at = memory ? memoryPlace(s.config) : openEsp(s, esps[i], only, progress);
    if (at === undefined) continue;
    const name = placeName(at);
    const list = listCandidates(s, at, only, progress);
    for (const c of list ?? []) {
      const full = name + " " + shownPath(at, c);
      if (!mayTry(s, progress, full)) break;
      const label = !only && !memory && list?.length === 1 ? name : full;
      const found = tryCandidate(s, at, c, label, only && list?.length === 1, progress);
      if (found !== undefined) return found;
    }
    if (!memory) s.k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);
  }
  return undefined;
}

/**
 * The initramfs's DDIs: MEMORY_DDI_DIR, in which each storage_init.ddi= path is looked for by
 * memoryDdiPath().
 */
function memoryPlace(config: Config): Place {
  return { base: MEMORY_DDI_DIR, paths: memoryDdiPaths(config.ddiPaths), esp: undefined, device: "" };
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
  let mounted: Place | undefined;
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
 * The root from the ESPs `esps`, or with `memory` from the initramfs: with roothash= (or one
 * ESP), the first DDI that yields a verified, mounted and checked root, ESP by ESP (firstRoot());
 * with the signed policy and several ESPs, the newest version among them all (newestRoot()). Its
 * ESP is left mounted on ESP_MOUNT. Throws the one candidate's failure when there is one and no
 * source follows (`only`), or a failure naming each reason.
 */
function rootFrom(s: RootSearch, esps: Esp[], memory: boolean, only: boolean, progress: Progress): FoundRoot {
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
  const found =
    s.config.rootPolicy === "signed" && esps.length > 1
      ? newestRoot(s, esps, progress)
      : firstRoot(s, esps, memory, only && (memory || esps.length === 1), progress);
  if (found !== undefined) return found;
  s.run.failIn("ddi", memory ? MEMORY_DDI_DIR : s.config.ddiPaths.join(","));
  const what =
    esps.length > 1
      ? "none of the " + esps.length + " ESPs holds a DDI this boot can use: "
      : "none of the " + progress.refused.length + " DDIs is usable: ";
  throw new InitError(what + reasonsOf(progress.refused));
}

/** The refusals, "label: reason" each, for a fatal line. */
function reasonsOf(refused: Refusal[]): string {
  const reasons: string[] = [];
  for (const r of refused) reasons.push(r.label + ": " + r.reason);
  return reasons.join("; ");
}

/** Whether `path` is a directory. */
function isDirectory(k: Kernel, path: string): boolean {
  try {
    return fileType(k.stat(path)) === FileType.DIR;
  } catch (e) {
    return false;
  }
}

/** Why the initramfs gives no DDI when it carries none. */
const NO_MEMORY_DDI = "no DDI in " + INITRAMFS + " (" + MEMORY_DDI_DIR + ")";

/**
 * What the ESP's fatal line adds of the initramfs searched before it, briefly (the line holds
 * 200 characters; the reasons were logged as they came): that it carried no DDI, or how many
 * of its DDIs were passed over.
 */
function sourcesBefore(noMemoryDdi: boolean, earlier: Refusal[]): string {
  if (noMemoryDdi) return "; no DDI in memory";
  if (earlier.length === 0) return "";
  return "; " + (earlier.length === 1 ? "the DDI" : earlier.length + " DDIs") + " in memory passed over";
}

/**
 * The ESPs `espsOf()` finds (the wait for them; its fatal line ends with sourcesBefore()). When
 * none appears and the ESPs are not the last source (`last`), the failure is recorded and
 * undefined returned. The catch block reads only parameters (porffor: try-catch-stale-locals).
 */
function espsOrNone(
  espsOf: (also: string) => Esp[],
  also: string,
  progress: Progress,
  last: boolean,
): Esp[] | undefined {
  try {
    return espsOf(also);
  } catch (e) {
    if (last) throw e;
    progress.refused.push({ label: "the ESP", reason: errorText(e) });
    return undefined;
  }
}

/**
 * The root from a source (rootFrom()), the source `last` or before others: when it is not the
 * last, its failure is recorded and undefined returned; when it is, what earlier sources passed
 * over follows its reason. The catch block reads only parameters (porffor: try-catch-stale-locals).
 */
function sourceRoot(
  s: RootSearch,
  esps: Esp[],
  memory: boolean,
  last: boolean,
  progress: Progress,
  earlier: Refusal[],
): FoundRoot | undefined {
  try {
    return rootFrom(s, esps, memory, last, progress);
  } catch (e) {
    if (last) throw earlier.length === 0 ? e : new InitError(errorText(e) + "; " + reasonsOf(earlier));
    if (progress.refused.length === 0) {
      const label = memory ? INITRAMFS : "the ESP";
      s.log.warn("passed over " + label + ": " + errorText(e));
      progress.refused.push({ label, reason: errorText(e) });
    }
    return undefined;
  }
}

/**
 * The root, from the sources storage_init.sources= names in its order: the initramfs's DDIs
 * (passed over at once when it carries none), the ESPs `espsOf()` waits for (`espsOf(also)`
 * throws when none appears, its line ending with `also`). The first source that yields a root
 * gives it; the last one's failure is the boot's, naming what the sources before it passed
 * over (and, when no ESP appears, that the initramfs carried no DDI). MAX_TRIES spans all
 * sources.
 */
export function findRoot(s: RootSearch, espsOf: (also: string) => Esp[]): FoundRoot {
  if (s.config.rootPolicy === "signed") checkRequireSignatures(s);
  const earlier: Refusal[] = [];
  // The initramfs was searched first and carried no DDI.
  let noMemoryDdi = false;
  const sources = s.config.sources;
  let tries = 0;
  for (let i = 0; i < sources.length; i++) {
    const last = i === sources.length - 1;
    // The search of each source goes on at most storage_init.timeout from its start (for the
    // ESPs, from when they appear: the wait for them is bounded apart).
    const progress: Progress = { refused: [], tries, deadlineMs: s.k.monotonicMs() + s.config.timeoutMs };
    let found: FoundRoot | undefined;
    if (sources[i] === "initrd") {
      if (isDirectory(s.k, MEMORY_DDI_DIR)) found = sourceRoot(s, [], true, last, progress, earlier);
      else if (!last) {
        s.log.info(NO_MEMORY_DDI);
        noMemoryDdi = true;
      } else {
        s.run.failIn("ddi", MEMORY_DDI_DIR);
        // What the ESP said was logged as it came; the line stays short.
        throw new InitError(NO_MEMORY_DDI + (earlier.length > 0 ? "; and the ESP gave no root" : ""));
      }
    } else {
      const esps = espsOrNone(espsOf, sourcesBefore(noMemoryDdi, earlier), progress, last);
      progress.deadlineMs = s.k.monotonicMs() + s.config.timeoutMs;
      if (esps !== undefined) found = sourceRoot(s, esps, false, last, progress, earlier);
    }
    tries = progress.tries;
    if (found !== undefined) {
      found.passedOver = earlier.concat(progress.refused);
      announce(s, found);
      return found;
    }
    for (const r of progress.refused) earlier.push(r);
  }
  throw new InitError("no source gave a root: " + reasonsOf(earlier));
}

/** The notice of the root taken: its DDI, where it lay, its version, how many were passed over. */
function announce(s: RootSearch, found: FoundRoot): void {
  const v = found.version.version;
  const n = found.passedOver.length;
  s.log.notice(
    "root from " +
      found.path +
      (found.source === "initrd" ? " in " + INITRAMFS : " on " + found.espDevice) +
      (v !== "" ? " (version " + v + ")" : "") +
      (n > 0 ? " after " + n + " passed over" : ""),
  );
}

/** Where the booted system finds what was chosen (/run moves into the new root). */
export const ROOT_RECORD = "/run/storage-init/root.json";

/**
 * What was chosen, for the booted system (ROOT_RECORD): where the DDI was (its source, the ESP's
 * device and PARTUUID, empty for one in memory), its path, the image's version and which file said it, the root hash dm-verity checks, whether the
 * kernel accepted its signature, the policy and floor, the init, whether it is a second stage,
 * and what was passed over with its reason. Written by hand (porffor: json-stringify-wide).
 */
export function rootRecord(found: FoundRoot, config: Config): string {
  const passed: string[] = [];
  for (const r of found.passedOver)
    passed.push('{"label":' + jsonString(r.label) + ',"reason":' + jsonString(r.reason) + "}");
  const d = found.device;
  return (
    '{"source":' +
    jsonString(found.source) +
    ',"esp":{"device":' +
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
