/**
 * The kernel command line, read the way systemd reads it (proc_cmdline_parse): words split on
 * white space, double quotes group and are removed, `-` and `_` in keys are the same, a key
 * repeated later wins, unknown keys are ignored. The command line is signed as part of the UKI,
 * so it is the trusted source of the root hash; values are still validated strictly.
 *
 * `parseCmdline(text)` never throws: problems are returned in `problems`, and `main` decides.
 */

import { DEFAULT_DDI_PATH } from "../lib/facts.js";
import { isHex } from "../lib/hex.js";
import { parseDecimal } from "../lib/numbers.js";
import { quote } from "../lib/quote.js";
import { checkRootHash } from "../lib/root_hash.js";
import { cmdlinePairs } from "../lib/cmdline_words.js";
import { replaceText, splitText } from "../lib/text.js";
import { BUILD_POLICY } from "./build_facts.js";
import type { PolicyFacts } from "./build_facts.js";
import { compareVersions, versionProblem } from "./vpick.js";

export type FailureAction = "reboot" | "poweroff" | "halt" | "shell";

/**
 * How the root is verified, in systemd's image-policy words: `verity`, pinned by roothash= (a
 * signature the DDI carries for it is tried first; one the kernel refuses is warned of, and the
 * pinned hash activated without it); `signed`, the root hash taken from the DDI's signature
 * partition once the kernel accepts its signature, never without (roothash=, if given, must
 * match it: the hash pinned and the signature required).
 */
export type RootPolicy = "verity" | "signed";
/**
 * Where DDIs come from (Config.sources): `initrd`, the initramfs's MEMORY_DDI_DIR (in the UKI's
 * `.initrd` or a second initrd); `esp`, an ESP on a disk.
 */
export type DdiSource = "initrd" | "esp";
/** The sources in their default order: a DDI in memory when the initramfs carries one, else the ESP. */
export const DEFAULT_SOURCES: DdiSource[] = ["initrd", "esp"];
/** What the DDI must be (Config.secondStage). */
export type SecondStage = "auto" | "yes" | "no";

/** The parameters the command line gives a module. */
export interface ModuleParams {
  module: string;
  params: string;
}

export interface Config {
  /** Lower-case hex root hash of the verity tree (`roothash=`), or undefined. */
  rootHash: string | undefined;
  /** `systemd.verity=0` (or no/false/off): the user explicitly boots without verification. */
  verityDisabled: boolean;
  /** dm-verity's optional flags, in the kernel's words (`systemd.verity_root_options=`, comma-separated). */
  verityOptions: string[];
  /** `storage_init.root_policy=`: pinned by roothash=, or signed (RootPolicy). */
  rootPolicy: RootPolicy;
  /**
   * `storage_init.min_version=`: the oldest image version that may activate (IMAGE_VERSION= of
   * its os-release, compared as versions are); "" for no floor. An init built with
   * `--min-version` starts from that floor, and the command line can only raise it.
   */
  minVersion: string;
  /**
   * SHA-256 fingerprints (lower-case hex) of the certificates whose signatures of a root hash are
   * taken (`storage_init.certificate_fingerprint=`, comma-separated, or built in with
   * `--certificate`): required by the signed policy, since the kernel's keyrings trust every
   * enrolled MOK; empty when none is named.
   */
  certificateFingerprints: string[];
  /** `storage_init.allow_weak_hash`: verity digests shorter than 256 bits (sha1) are taken. */
  allowWeakHash: boolean;
  rootFsType: string;
  rootFlags: string;
  /** The init to execute in the new root (`init=`), or undefined for the usual list. */
  init: string | undefined;
  /**
   * The DDIs' paths on the ESP (`storage_init.ddi=`, comma-separated), in order of preference; a
   * path ending in `.v` or `.v/` is a vpick directory of versions (runtime/vpick.ts).
   */
  ddiPaths: string[];
  /** How to find the ESP (`storage_init.esp=`): PARTUUID=..., PARTLABEL=... or /dev/... */
  esp: string | undefined;
  /**
   * Where DDIs may come from, in order (`storage_init.sources=`, comma-separated, DdiSource):
   * the first source that gives a root gives it; an initramfs without MEMORY_DDI_DIR is passed
   * over at once.
   */
  sources: DdiSource[];
  /** How long to wait for block devices (`storage_init.timeout=`, seconds). */
  timeoutMs: number;
  onFailure: FailureAction;
  /** Seconds between the fatal message and the failure action (`storage_init.failure_delay=`). */
  failureDelayMs: number;
  debug: boolean;
  /**
   * `storage_init.second_stage=`: what the DDI must be. "auto" (the default): what the image says,
   * a second stage (a systemd initrd) when its root has a non-empty /etc/initrd-release, else the
   * final root; "yes": only a second stage is taken; "no": only a final root.
   */
  secondStage: SecondStage;
  /**
   * Module parameters, `module.param=value` words as modprobe reads them from the command line:
   * each module once, with the parameter string finit_module takes ("p=1 q=\"a b\""). A list,
   * not a Map: a Config is printed with JSON.stringify (porffor: json-stringify-map).
   */
  moduleParams: ModuleParams[];
  /** What was wrong with the command line, one message each; empty when all was well. */
  problems: string[];
}

export const DEFAULT_TIMEOUT_MS = 30000;
export const DEFAULT_FAILURE_DELAY_MS = 5000;
/** The most DDI paths storage_init.ddi= may name. */
export const MAX_DDI_PATHS = 8;
const FAILURE_ACTIONS: FailureAction[] = ["reboot", "poweroff", "halt", "shell"];
/** The root file system this init mounts: the DDI's root is erofs. */
const ROOT_FS_TYPE = "erofs";

/** The most certificates storage_init.certificate_fingerprint= names (a key and its successor, with room). */
export const MAX_CERTIFICATES = 4;

/**
 * storage_init.certificate_fingerprint=: SHA-256 fingerprints, comma-separated, each 64 hex
 * digits, with or without the colons `openssl x509 -fingerprint -sha256` prints. Returns them in
 * lower case; what is wrong goes to `problems`.
 */
export function certificateFingerprints(value: string, problems: string[]): string[] {
  const out: string[] = [];
  for (const one of splitText(value, ",")) {
    const f = replaceText(one, ":", "").toLowerCase();
    if (f.length !== 64 || !isHex(f))
      problems.push(
        "storage_init.certificate_fingerprint=" + quote(one) + " is not a SHA-256 fingerprint (64 hex digits)",
      );
    else if (out.indexOf(f) < 0) out.push(f);
  }
  if (out.length > MAX_CERTIFICATES)
    problems.push("storage_init.certificate_fingerprint= names more than " + MAX_CERTIFICATES + " certificates");
  return out;
}

/** dm-verity's optional flags (Documentation/admin-guide/device-mapper/verity.rst), in its words. */
const VERITY_FLAGS =
  "ignore_corruption, restart_on_corruption, panic_on_corruption, ignore_zero_blocks, check_at_most_once";

/**
 * systemd.verity_root_options= as dm-verity's flags (`-` or `_`, as systemd writes them). The
 * options systemd-veritysetup takes to describe the format (hash=, superblock=, data-blocks=...)
 * are refused by name: storage-init reads the format from the DDI's verity superblock.
 */
export function verityRootOptions(value: string, problems: string[]): string[] {
  const out: string[] = [];
  for (const o of splitText(value, ",")) {
    if (o === "") continue;
    const name = replaceText(o, "-", "_");
    if (o.indexOf("=") < 0 && (" " + VERITY_FLAGS + ",").indexOf(" " + name + ",") >= 0) out.push(name);
    else {
      problems.push(
        "systemd.verity_root_options=" +
          quote(o) +
          " is not taken: the verity format comes from the DDI's superblock, and the options are " +
          VERITY_FLAGS,
      );
    }
  }
  return out;
}

/**
 * storage_init.sources=: `initrd` and `esp`, comma-separated, each at most once, in the order
 * they are tried; what is wrong goes to `problems` (and nothing is returned).
 */
function ddiSources(value: string, problems: string[]): DdiSource[] {
  const out: DdiSource[] = [];
  for (const one of splitText(value, ",")) {
    if (one !== "initrd" && one !== "esp") {
      problems.push("storage_init.sources= takes initrd and esp, comma-separated: " + quote(one));
      return [];
    }
    if (out.indexOf(one) >= 0) {
      problems.push("storage_init.sources= names " + one + " twice");
      return [];
    }
    out.push(one);
  }
  return out;
}

/** Adds `module.param=value` to the module's parameter string; a value with white space is quoted. */
function addModuleParam(list: ModuleParams[], key: string, value: string | undefined): void {
  const dot = key.indexOf(".");
  const module = key.slice(0, dot);
  let param = key.slice(dot + 1);
  if (value !== undefined)
    param += "=" + (value.indexOf(" ") >= 0 || value.indexOf("\t") >= 0 ? '"' + value + '"' : value);
  for (const m of list) {
    if (m.module === module) {
      m.params += " " + param;
      return;
    }
  }
  list.push({ module, params: param });
}

/** A boolean the way systemd's parse_boolean reads it; undefined when it is not one. */
export function parseBoolean(v: string | undefined): boolean | undefined {
  if (v === undefined) return true;
  const s = v.toLowerCase();
  if (s === "1" || s === "yes" || s === "y" || s === "true" || s === "t" || s === "on") return true;
  if (s === "0" || s === "no" || s === "n" || s === "false" || s === "f" || s === "off") return false;
  return undefined;
}

/** Seconds (decimal, optionally suffixed `s` or `ms`) to milliseconds; undefined when invalid. */
export function parseSeconds(v: string): number | undefined {
  let num = v;
  let scale = 1000;
  if (v.endsWith("ms")) {
    num = v.slice(0, v.length - 2);
    scale = 1;
  } else if (v.endsWith("s")) num = v.slice(0, v.length - 1);
  if (num.length > 12) return undefined;
  const ms = parseDecimal(num, scale);
  return ms === undefined || ms > 86400000 * scale ? undefined : ms;
}

/** The configuration before the command line is read: the defaults, from the build's `facts`. */
export function defaultConfig(facts: PolicyFacts = BUILD_POLICY): Config {
  return {
    rootHash: undefined,
    verityDisabled: false,
    verityOptions: [],
    rootPolicy: facts.rootPolicy,
    minVersion: facts.minVersion,
    certificateFingerprints: facts.certificates === "" ? [] : splitText(facts.certificates, ","),
    allowWeakHash: false,
    rootFsType: ROOT_FS_TYPE,
    rootFlags: "",
    init: undefined,
    ddiPaths: [DEFAULT_DDI_PATH],
    esp: undefined,
    sources: DEFAULT_SOURCES.slice(),
    timeoutMs: DEFAULT_TIMEOUT_MS,
    onFailure: "reboot",
    failureDelayMs: DEFAULT_FAILURE_DELAY_MS,
    debug: false,
    secondStage: "auto",
    moduleParams: [],
    problems: [],
  };
}

function need(key: string, value: string | undefined, problems: string[]): string | undefined {
  if (value === undefined || value === "") {
    problems.push(key + "= needs a value");
    return undefined;
  }
  return value;
}

/**
 * Interprets the kernel command line; see the README for every option. `facts`: what the build
 * decided (this init's own; `storage-init check` passes those of the init it checks for).
 */
export function parseCmdline(text: string, facts: PolicyFacts = BUILD_POLICY): Config {
  const c = defaultConfig(facts);
  const p = c.problems;
  for (const { key, value } of cmdlinePairs(text)) {
    if (key === "roothash") {
      const v = value === undefined ? "" : value;
      const r = checkRootHash(v);
      if (r.error !== undefined) {
        p.push("roothash= " + r.error);
        c.rootHash = undefined;
      } else c.rootHash = r.hash;
    } else if (key === "systemd.verity") {
      const b = parseBoolean(value);
      if (b === undefined) p.push("systemd.verity= is not a boolean: " + quote(value === undefined ? "" : value));
      else c.verityDisabled = !b;
    } else if (key === "systemd.verity_root_options") {
      const v = need(key, value, p);
      if (v !== undefined) c.verityOptions = verityRootOptions(v, p);
    } else if (key === "storage_init.root_policy") {
      const v = value === undefined ? "" : value;
      if (v !== "verity" && v !== "signed") p.push("storage_init.root_policy= must be verity|signed: " + quote(v));
      else if (v === "verity" && facts.rootPolicy === "signed")
        p.push("storage_init.root_policy=verity is refused: this build requires signed roots");
      else c.rootPolicy = v;
    } else if (key === "storage_init.min_version") {
      const v = value === undefined ? "" : value;
      const bad = versionProblem(v);
      if (bad !== "") p.push("storage_init.min_version=" + quote(v) + ": " + bad);
      else if (facts.minVersion !== "" && compareVersions(v, facts.minVersion) < 0)
        p.push(
          "storage_init.min_version=" + v + " is refused: this build boots nothing older than " + facts.minVersion,
        );
      else c.minVersion = v;
    } else if (key === "storage_init.certificate_fingerprint") {
      const v = value === undefined ? "" : value;
      if (facts.certificates !== "")
        p.push("storage_init.certificate_fingerprint= is refused: this build names the certificates it takes");
      else c.certificateFingerprints = certificateFingerprints(v, p);
    } else if (key === "storage_init.allow_weak_hash") {
      const b = parseBoolean(value);
      if (b === undefined)
        p.push("storage_init.allow_weak_hash= is not a boolean: " + quote(value === undefined ? "" : value));
      else c.allowWeakHash = b;
    } else if (key === "root") {
      // Ignored, the root being the DDI's; an empty one is still named.
      need(key, value, p);
    } else if (key === "rootfstype") {
      const v = need(key, value, p);
      if (v !== undefined) {
        if (v !== ROOT_FS_TYPE) p.push("rootfstype=" + v + " is not supported; supported: " + ROOT_FS_TYPE);
        else c.rootFsType = v;
      }
    } else if (key === "rootflags") {
      c.rootFlags = value === undefined ? "" : value;
    } else if (key === "init") {
      const v = need(key, value, p);
      if (v !== undefined) {
        if (v[0] !== "/") p.push("init= must be an absolute path: " + quote(v));
        else c.init = v;
      }
    } else if (key === "storage_init.ddi") {
      const v = need(key, value, p);
      if (v !== undefined) {
        const paths: string[] = [];
        for (const one of splitText(v, ",")) {
          if (one === "") continue;
          if (one[0] !== "/" || one.indexOf("/../") >= 0 || one.endsWith("/..")) {
            p.push("storage_init.ddi= takes absolute paths on the ESP without '..': " + quote(one));
          } else if (paths.indexOf(one) < 0) paths.push(one);
        }
        if (paths.length > MAX_DDI_PATHS) p.push("storage_init.ddi= names more than " + MAX_DDI_PATHS + " paths");
        else if (paths.length > 0) c.ddiPaths = paths;
      }
    } else if (key === "storage_init.esp") {
      c.esp = need(key, value, p);
    } else if (key === "storage_init.sources") {
      const v = need(key, value, p);
      if (v !== undefined) {
        const sources = ddiSources(v, p);
        if (sources.length > 0) c.sources = sources;
      }
    } else if (key === "storage_init.timeout") {
      const ms = value === undefined ? undefined : parseSeconds(value);
      if (ms === undefined)
        p.push("storage_init.timeout= is not a duration: " + quote(value === undefined ? "" : value));
      else c.timeoutMs = ms;
    } else if (key === "storage_init.on_failure") {
      const v = value === undefined ? "" : value;
      let found = false;
      for (const a of FAILURE_ACTIONS) {
        if (a === v) {
          c.onFailure = a;
          found = true;
        }
      }
      if (!found) p.push("storage_init.on_failure= must be one of " + FAILURE_ACTIONS.join("|") + ": " + quote(v));
    } else if (key === "storage_init.failure_delay") {
      const ms = value === undefined ? undefined : parseSeconds(value);
      if (ms === undefined)
        p.push("storage_init.failure_delay= is not a duration: " + quote(value === undefined ? "" : value));
      else c.failureDelayMs = ms;
    } else if (key === "storage_init.second_stage") {
      const b = parseBoolean(value);
      if (value !== undefined && value.toLowerCase() === "auto") c.secondStage = "auto";
      else if (b === undefined)
        p.push("storage_init.second_stage= must be auto, yes or no: " + quote(value === undefined ? "" : value));
      else c.secondStage = b ? "yes" : "no";
    } else if (key === "storage_init.debug") {
      const b = parseBoolean(value);
      c.debug = b === true;
    } else if (key.indexOf(".") > 0 && !key.startsWith("storage_init.")) {
      addModuleParam(c.moduleParams, key, value);
    }
  }
  if (c.rootPolicy === "signed") {
    if (c.verityDisabled) p.push("systemd.verity=0 contradicts storage_init.root_policy=signed");
    // The kernel trusts every key of its keyrings, any MOK among them: the policy names its signers.
    if (c.certificateFingerprints.length === 0)
      p.push(
        "storage_init.root_policy=signed needs storage_init.certificate_fingerprint= (the SHA-256 of the certificate that signs the roots) or a build with --certificate",
      );
    // The kernel itself then refuses a verity table without a signature it accepted.
    addModuleParam(c.moduleParams, "dm_verity.require_signatures", "1");
  }
  return c;
}

/**
 * Why the boot refuses this command line's root before looking for it, or "": nothing would
 * verify it (no roothash=, not the signed policy, and verification not turned off).
 */
export function verificationRefusal(c: Config): string {
  if (c.rootHash !== undefined || c.verityDisabled || c.rootPolicy === "signed") return "";
  return "no roothash= on the kernel command line: refusing to boot an unverified root (storage_init.root_policy=signed takes the root hash from a signed DDI; systemd.verity=0 boots without verification)";
}
