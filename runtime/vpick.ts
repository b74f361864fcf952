/**
 * Versioned DDIs side by side on the ESP, named as systemd-vpick and sysupdate name them: a
 * directory `NAME.v/` holding `NAME_VERSION[_ARCH][+LEFT[-DONE]].raw`. Versions compare as the
 * UAPI Version Format Specification says; `+LEFT-DONE` counts boot attempts (boot counting), and
 * an entry with no tries left sorts after every other. File names come from the ESP: hostile.
 * Pure but for readVpickDir() and listDdis(), which read the ESP's directories.
 */
import { errorText, InitError, ParseError } from "../lib/errors.js";
import { quote } from "../lib/quote.js";
import { isVpickDir } from "../lib/facts.js";
import type { Kernel } from "../syscalls/kernel.js";

/** The most entries of a directory considered; more is refused rather than read. */
export const VPICK_MAX_ENTRIES = 64;
/** readdir types (DirEntry.type): a regular file, and a file system that does not say. */
const DT_REG = 8;
const DT_UNKNOWN = 0;
/** The longest version string taken. */
const VERSION_MAX = 128;

export interface VpickEntry {
  /** The file's name in its directory. */
  file: string;
  version: string;
  /** The architecture in the name, or "" for any. */
  arch: string;
  /** Tries left and done (`+LEFT-DONE`); left is -1 without boot counting. */
  triesLeft: number;
  triesDone: number;
}

/** Architecture names of systemd's table a name may carry (src/basic/architecture.c). */
const ARCH_NAMES =
  " x86 x86-64 arm arm64 arm-be arm64-be ia64 loongarch64 mips mips64 mips-le mips64-le parisc parisc64 ppc ppc64 ppc-le ppc64-le riscv32 riscv64 s390 s390x alpha arc arc-be cris m68k nios2 sh sh64 sparc sparc64 tilegx ";

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** A character the version comparison does not skip. */
function isVersionChar(c: number): boolean {
  return isDigit(c) || isLetter(c) || c === 45 || c === 46 || c === 126 || c === 94;
}

/** A decimal count without a sign or leading zeros beyond one digit, up to 9 digits; -1 when not one. */
function parseCount(s: string): number {
  if (s.length === 0 || s.length > 9 || (s.length > 1 && s[0] === "0")) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/**
 * Compares two versions as systemd's strverscmp_improved() does (the UAPI Version Format
 * Specification, with `~` weighed before the end of a string, so that 1.0~rc1 is older than
 * 1.0): negative when `a` is older, positive when newer, 0 when equal. Checked against
 * systemd's own test vectors (tests/vpick.test.ts).
 */
export function compareVersions(a: string, b: string): number {
  // An empty string is older than any other, '~' included (systemd compares it first).
  if (a === "" || b === "") return (a === "" ? 0 : 1) - (b === "" ? 0 : 1);
  let i = 0;
  let j = 0;
  for (;;) {
    while (i < a.length && !isVersionChar(a.charCodeAt(i))) i++;
    while (j < b.length && !isVersionChar(b.charCodeAt(j))) j++;
    // Character codes, -1 past the end: `~` 126, `-` 45, `^` 94, `.` 46.
    let ca = i < a.length ? a.charCodeAt(i) : -1;
    let cb = j < b.length ? b.charCodeAt(j) : -1;
    // `~` first, as systemd's strverscmp_improved() does: 1.0~rc1 is older than 1.0.
    if (ca === 126 || cb === 126) {
      if (ca !== 126) return 1;
      if (cb !== 126) return -1;
      i++;
      j++;
      ca = i < a.length ? a.charCodeAt(i) : -1;
      cb = j < b.length ? b.charCodeAt(j) : -1;
    }
    if (ca < 0 || cb < 0) return (ca < 0 ? 0 : 1) - (cb < 0 ? 0 : 1);
    // `-`, then `^`, then `.`: at its place, the string that has it is the older (1.0-1 <
    // 1.0^1 < 1.0.1 < 1.0a); the end of a string was older still.
    const sep = ca === 45 || cb === 45 ? 45 : ca === 94 || cb === 94 ? 94 : ca === 46 || cb === 46 ? 46 : 0;
    if (sep !== 0) {
      if (ca !== sep) return 1;
      if (cb !== sep) return -1;
      i++;
      j++;
      continue;
    }
    if (isDigit(ca) || isDigit(cb)) {
      while (i < a.length && a.charCodeAt(i) === 48) i++;
      while (j < b.length && b.charCodeAt(j) === 48) j++;
      let ea = i;
      let eb = j;
      while (ea < a.length && isDigit(a.charCodeAt(ea))) ea++;
      while (eb < b.length && isDigit(b.charCodeAt(eb))) eb++;
      // Longer is larger, without leading zeros; then digit by digit: no overflow.
      if (ea - i !== eb - j) return ea - i > eb - j ? 1 : -1;
      for (; i < ea; i++, j++)
        if (a.charCodeAt(i) !== b.charCodeAt(j)) return a.charCodeAt(i) > b.charCodeAt(j) ? 1 : -1;
      continue;
    }
    for (;;) {
      const la = i < a.length && isLetter(a.charCodeAt(i));
      const lb = j < b.length && isLetter(b.charCodeAt(j));
      if (!la || !lb) {
        if (la !== lb) return la ? 1 : -1;
        break;
      }
      if (a.charCodeAt(i) !== b.charCodeAt(j)) return a.charCodeAt(i) > b.charCodeAt(j) ? 1 : -1;
      i++;
      j++;
    }
  }
}

/** What is wrong with `v` as a version (UAPI Version Format: a-z A-Z 0-9 . - ~ ^, at most VERSION_MAX), or "". */
export function versionProblem(v: string): string {
  if (v.length === 0 || v.length > VERSION_MAX) return "is empty or longer than " + VERSION_MAX;
  for (let i = 0; i < v.length; i++)
    if (!isVersionChar(v.charCodeAt(i))) return quote(v) + " has a character outside a-z A-Z 0-9 . - ~ ^";
  return "";
}

/**
 * Reads `file`'s name as an entry of the directory of `name` with `suffix`; returns the entry,
 * or why the name is not one (a string).
 */
export function parseVpickName(name: string, suffix: string, file: string): VpickEntry | string {
  if (!file.startsWith(name + "_") || !file.endsWith(suffix) || file.length <= name.length + 1 + suffix.length)
    return "not named " + name + "_VERSION" + suffix;
  let middle = file.slice(name.length + 1, file.length - suffix.length);
  let triesLeft = -1;
  let triesDone = 0;
  const plus = middle.lastIndexOf("+");
  if (plus >= 0) {
    const tries = middle.slice(plus + 1);
    const dash = tries.indexOf("-");
    triesLeft = parseCount(dash < 0 ? tries : tries.slice(0, dash));
    triesDone = dash < 0 ? 0 : parseCount(tries.slice(dash + 1));
    if (triesLeft < 0 || triesDone < 0) return "its boot counter " + quote("+" + tries) + " is not +LEFT or +LEFT-DONE";
    middle = middle.slice(0, plus);
  }
  let arch = "";
  const under = middle.lastIndexOf("_");
  if (under >= 0) {
    arch = middle.slice(under + 1);
    if (ARCH_NAMES.indexOf(" " + arch + " ") < 0)
      return "its architecture " + quote(arch) + " is not one systemd names";
    middle = middle.slice(0, under);
  }
  const bad = versionProblem(middle);
  if (bad !== "") return "its version " + bad;
  return { file, version: middle, arch, triesLeft, triesDone };
}

/** Sort order: entries with tries left (or no counting) first, then newest version first. */
export function compareEntries(a: VpickEntry, b: VpickEntry): number {
  const ea = a.triesLeft === 0 ? 1 : 0;
  const eb = b.triesLeft === 0 ? 1 : 0;
  if (ea !== eb) return ea - eb;
  const v = compareVersions(b.version, a.version);
  if (v !== 0) return v;
  // The same version twice (one with a boot counter): the one with more tries left first.
  return b.triesLeft - a.triesLeft;
}

/** A name in a vpick directory and why it was left out ("" when it was not). */
export interface VpickFile {
  path: string;
  entry: VpickEntry | undefined;
  skipped: string;
}

/**
 * The entries of the vpick directory `dir` (a path on the mounted ESP `root`) for `arch`, in the
 * order to try them; names that are not entries, and entries for another architecture, come
 * back with `skipped` saying why. Throws ParseError when the directory holds more than
 * VPICK_MAX_ENTRIES names (reading stops there).
 */
export function readVpickDir(k: Kernel, root: string, dir: string, arch: string, suffix: string): VpickFile[] {
  const clean = dir.endsWith("/") ? dir.slice(0, dir.length - 1) : dir;
  const base = clean.slice(clean.lastIndexOf("/") + 1);
  const name = base.slice(0, base.length - 2);
  // Read no further than the cap: a directory of millions of names is refused, not listed.
  const entries = k.readdir(root + clean, VPICK_MAX_ENTRIES);
  if (entries.length > VPICK_MAX_ENTRIES)
    throw new ParseError(clean + " holds more than " + VPICK_MAX_ENTRIES + " names; at most that many are read");
  const good: VpickEntry[] = [];
  const out: VpickFile[] = [];
  for (const e of entries) {
    const path = clean + "/" + e.name;
    const parsed = parseVpickName(name, suffix, e.name);
    if (typeof parsed === "string") out.push({ path, entry: undefined, skipped: parsed });
    else if (parsed.arch !== "" && parsed.arch !== arch)
      out.push({ path, entry: parsed, skipped: "for " + parsed.arch + ", not " + arch });
    else if (e.type !== DT_REG && e.type !== DT_UNKNOWN)
      out.push({ path, entry: parsed, skipped: "not a regular file" });
    else good.push(parsed);
  }
  good.sort(compareEntries);
  const sorted: VpickFile[] = [];
  for (const g of good) sorted.push({ path: clean + "/" + g.file, entry: g, skipped: "" });
  for (const o of out) sorted.push(o);
  return sorted;
}

/**
 * Why the image version of a DDI rules it out, or "". `claimed` is the version its vpick name
 * gives (undefined for a path named as it is), `image` the IMAGE_VERSION= its os-release assigns
 * ("" for none), read through dm-verity. Under the signed policy the version orders the DDIs and
 * a name vouches for nothing: a name that claims another version than the image, or a vpick
 * entry whose image carries none, is refused (a DDI signed long ago, renamed newest, is not
 * newest). A floor (storage_init.min_version=, "" for none) refuses what is older, and what
 * carries no version.
 */
export function imageVersionRefusal(
  signed: boolean,
  claimed: string | undefined,
  image: string,
  floor: string,
): string {
  if (signed && claimed !== undefined && image === "")
    return "its name says version " + claimed + ", but the image carries no IMAGE_VERSION= in its os-release";
  if (signed && claimed !== undefined && claimed !== image)
    return "its name says version " + claimed + ", the image says IMAGE_VERSION=" + image;
  if (floor !== "" && image === "")
    return "the image carries no IMAGE_VERSION=, and storage_init.min_version=" + floor + " asks for one";
  if (floor !== "" && compareVersions(image, floor) < 0)
    return "its version " + image + " is older than storage_init.min_version=" + floor;
  return "";
}

/**
 * What is said of a name that claims another version than the image where the policy does not
 * refuse it (pinned by roothash=, the hash vouches for the image whatever its file is called),
 * or "" when the name agrees or claims none.
 */
export function imageVersionWarning(claimed: string | undefined, image: string): string {
  if (claimed === undefined || image === "" || claimed === image) return "";
  return "its name says version " + claimed + ", the image says IMAGE_VERSION=" + image;
}

/** A DDI to try on an ESP: its path there, and the version its vpick name claims (undefined for a path named as it is). */
export interface DdiName {
  path: string;
  claimed: string | undefined;
}

/** Where listDdis() says what it passed over: the boot's log, or the check's lines. */
export interface Notes {
  info(line: string): void;
  warn(line: string): void;
}

/**
 * Adds the entries of the vpick directory `dir` for `arch` to `out`, newest first, and says what
 * it passed over and a summary.
 */
function addVpickDir(k: Kernel, root: string, dir: string, arch: string, note: Notes, out: DdiName[]): void {
  let names = "";
  let n = 0;
  for (const f of readVpickDir(k, root, dir, arch, ".raw")) {
    if (f.skipped !== "") note.info("passed over " + f.path + ": " + f.skipped);
    else {
      out.push({ path: f.path, claimed: f.entry === undefined ? undefined : f.entry.version });
      names += (n === 0 ? ", newest first: " : ", ") + f.path;
      n++;
    }
  }
  note.info(dir + ": " + n + " candidate" + (n === 1 ? "" : "s") + names);
}

/**
 * addVpickDir(), or when the directory cannot be read, the reason said and added to `passedOver`
 * (porffor: try-catch-stale-locals: the catch reads only parameters).
 */
function addOrPassOver(
  k: Kernel,
  root: string,
  dir: string,
  arch: string,
  note: Notes,
  out: DdiName[],
  passedOver: Array<{ label: string; reason: string }>,
): void {
  try {
    addVpickDir(k, root, dir, arch, note, out);
  } catch (e) {
    note.warn("passed over " + dir + ": " + errorText(e));
    passedOver.push({ label: dir, reason: errorText(e) });
  }
}

/**
 * The DDIs storage_init.ddi= names on the ESP mounted on `root`, as the boot and the check both
 * take them: each path as given, each vpick directory's entries for `arch` newest first, in the
 * command line's order. A directory that cannot be read is passed over (added to `passedOver`)
 * when other paths are named; named alone, its error is thrown, as is its having no DDI for
 * `arch`, and an empty list. `note` hears what was passed over and why (warn for a directory,
 * info for a name), and each directory's summary (info).
 */
export function listDdis(
  k: Kernel,
  root: string,
  paths: string[],
  arch: string,
  note: Notes,
  passedOver: Array<{ label: string; reason: string }>,
): DdiName[] {
  const out: DdiName[] = [];
  for (const path of paths) {
    if (!isVpickDir(path)) out.push({ path, claimed: undefined });
    else if (paths.length > 1) addOrPassOver(k, root, path, arch, note, out, passedOver);
    else {
      addVpickDir(k, root, path, arch, note, out);
      if (out.length === 0) throw new ParseError(path + " holds no DDI for " + arch);
    }
  }
  if (out.length === 0) throw new InitError("no DDI to try");
  return out;
}
