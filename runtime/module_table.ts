/**
 * The storage module table: computed at image-build time from a kernel's modules.dep,
 * modules.alias, modules.builtin and modules.softdep (toolchain/module_closure.ts), written into
 * the initramfs as text, and read at boot, where the only work left is matching modaliases and
 * looking up a load order. The text format is the one thing the toolchain shares with the init.
 *
 * Text format, one record a line, fields separated by single spaces:
 *   storage-init-modules 2 <release>  the kernel release (uname -r) the modules were built for
 *   m <name> <file> <dep,dep,...|->   a module, its file under /modules, its dependencies
 *                                     (the whole closure, in load order)
 *   a <name> <pattern>                a modalias glob (modules.alias) that selects the module
 *   g <group> <name,name,...>         modules loaded by name for a phase (ModuleGroup)
 * Pure functions; the table is read from the initramfs, which the UKI signs, but is still
 * parsed strictly.
 */

import { ParseError } from "../lib/errors.js";
import { replaceText, splitText } from "../lib/text.js";

export interface ModuleInfo {
  name: string;
  file: string;
  deps: string[];
}

/** Modules loaded by name for a phase of the boot, not by modalias. */
export type ModuleGroup =
  "efi" | "vfat" | "loop" | "verity" | "erofs" | "overlay" | "hash-sha1" | "hash-sha256" | "hash-sha512";

export interface ModuleTable {
  modules: Map<string, ModuleInfo>;
  aliases: Array<{ pattern: string; name: string }>;
  groups: Map<string, string[]>;
  /** The kernel release the modules are for (`uname -r`). */
  release: string;
}

export const TABLE_MAGIC = "storage-init-modules 2";

/** The characters fnmatch gives a meaning, as code units: compared as numbers, not one-character strings. */
const Glob = { STAR: 42, ANY: 63, OPEN: 91, CLOSE: 93, NOT: 33, CARET: 94, RANGE: 45, ESCAPE: 92 };

/** A module's name as the kernel knows it: file name without .ko[.xz|.zst|.gz], `-` as `_`. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const ko = base.indexOf(".ko");
  return replaceText(ko < 0 ? base : base.slice(0, ko), "-", "_");
}

/**
 * fnmatch(3) without flags, as modprobe matches modules.alias: `*`, `?`, `[set]`, `[!set]`,
 * ranges, and `\` escapes. Iterative with one backtrack point: linear in practice, never
 * exponential.
 */
export function globMatch(pattern: string, text: string): boolean {
  const pn = pattern.length;
  const tn = text.length;
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < tn) {
    if (p < pn) {
      const c = pattern.charCodeAt(p);
      const x = text.charCodeAt(t);
      if (c === Glob.STAR) {
        starP = p++;
        starT = t;
        continue;
      }
      if (c === Glob.ANY) {
        p++;
        t++;
        continue;
      }
      if (c === Glob.OPEN) {
        const r = matchSet(pattern, p, x);
        if (r > 0) {
          p = r;
          t++;
          continue;
        }
        if (r === 0 && x === Glob.OPEN) {
          // An unterminated `[` is a literal.
          p++;
          t++;
          continue;
        }
      } else if (c === Glob.ESCAPE && p + 1 < pn) {
        if (pattern.charCodeAt(p + 1) === x) {
          p += 2;
          t++;
          continue;
        }
      } else if (c === x) {
        p++;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    t = ++starT;
  }
  while (p < pn && pattern.charCodeAt(p) === Glob.STAR) p++;
  return p === pn;
}

/**
 * Matches the character `ch` (a UTF-16 code unit) against the set starting at
 * pattern[open] === "[". Returns the index after `]` on a match, -1 on no match, 0 when the set
 * is not terminated.
 */
function matchSet(pattern: string, open: number, ch: number): number {
  const n = pattern.length;
  let i = open + 1;
  let negate = false;
  if (i < n && (pattern.charCodeAt(i) === Glob.NOT || pattern.charCodeAt(i) === Glob.CARET)) {
    negate = true;
    i++;
  }
  let matched = false;
  let first = true;
  while (i < n && (first || pattern.charCodeAt(i) !== Glob.CLOSE)) {
    first = false;
    let lo = pattern.charCodeAt(i);
    if (lo === Glob.ESCAPE && i + 1 < n) lo = pattern.charCodeAt(++i);
    if (i + 2 < n && pattern.charCodeAt(i + 1) === Glob.RANGE && pattern.charCodeAt(i + 2) !== Glob.CLOSE) {
      let hi = pattern.charCodeAt(i + 2);
      i += 2;
      if (hi === Glob.ESCAPE && i + 1 < n) hi = pattern.charCodeAt(++i);
      if (ch >= lo && ch <= hi) matched = true;
    } else if (ch === lo) matched = true;
    i++;
  }
  if (i >= n) return 0;
  return matched !== negate ? i + 1 : -1;
}

function malformed(i: number, line: string): ParseError {
  return new ParseError("module table line " + (i + 1) + " is malformed: " + line.slice(0, 80));
}

/** Every name must be a module of the table: "module table: <before> <name><after>" if not. */
function requireModules(t: ModuleTable, names: string[], before: string, after: string): void {
  for (let i = 0; i < names.length; i++) {
    const n: string = names[i];
    if (!t.modules.has(n)) throw new ParseError("module table: " + before + " " + n + after);
  }
}

/**
 * Parses the table text; throws ParseError naming the line that is wrong. No closures (porffor
 * gives captured locals no type), and every field read from a line goes into a local annotated
 * `string` once the line's length is checked, so that porffor compiles string operations instead
 * of a dispatch over every value type.
 */
export function parseModuleTable(text: string): ModuleTable {
  const lines = splitText(text, "\n");
  const header: string = lines[0];
  const release = header.slice(TABLE_MAGIC.length + 1);
  if (!header.startsWith(TABLE_MAGIC + " ") || release === "" || release.indexOf(" ") >= 0)
    throw new ParseError('module table: first line is not "' + TABLE_MAGIC + ' <kernel release>"');
  const t: ModuleTable = { modules: new Map(), aliases: [], groups: new Map(), release };
  for (let i = 1; i < lines.length; i++) {
    const line: string = lines[i];
    if (line === "") continue;
    const f = splitText(line, " ");
    const kind: string = f[0];
    if (kind === "m" && f.length === 4) {
      const name: string = f[1];
      const file: string = f[2];
      const deps: string = f[3];
      if (file.indexOf("..") >= 0 || file.charCodeAt(0) === 47) throw malformed(i, line);
      t.modules.set(name, { name, file, deps: deps === "-" ? [] : splitText(deps, ",") });
    } else if (kind === "a" && f.length === 3) {
      const name: string = f[1];
      const pattern: string = f[2];
      t.aliases.push({ name, pattern });
    } else if (kind === "g" && f.length === 3) {
      const group: string = f[1];
      const members: string = f[2];
      t.groups.set(group, splitText(members, ","));
    } else throw malformed(i, line);
  }
  for (const m of t.modules.values()) requireModules(t, m.deps, m.name + " depends on", ", which is not in the table");
  for (const a of t.aliases) requireModules(t, [a.name], "alias for unknown module", "");
  for (const g of t.groups.keys()) requireModules(t, t.groups.get(g) ?? [], "group " + g + " names unknown module", "");
  return t;
}

/** Modules whose aliases match `modalias`, in table order, each once. */
export function matchModalias(modalias: string, table: ModuleTable): string[] {
  const out: string[] = [];
  for (const a of table.aliases) {
    if (out.indexOf(a.name) < 0 && globMatch(a.pattern, modalias)) out.push(a.name);
  }
  return out;
}

/** What to load for `name`, dependencies first, without those in `loaded`. */
export function loadOrder(name: string, table: ModuleTable, loaded: Set<string>): ModuleInfo[] {
  const m = table.modules.get(name);
  if (m === undefined) throw new ParseError("module " + name + " is not in the initramfs");
  const out: ModuleInfo[] = [];
  for (const d of m.deps) {
    const dm = table.modules.get(d);
    if (dm !== undefined && !loaded.has(d)) out.push(dm);
  }
  if (!loaded.has(name)) out.push(m);
  return out;
}
