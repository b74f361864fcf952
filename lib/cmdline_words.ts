/**
 * A kernel command line's words, split the way systemd splits them (proc_cmdline_parse): white
 * space separates, double quotes group and are removed, `-` and `_` in keys are the same. Pure:
 * the init reads its own command line with it, the UKI build the one it signs.
 */
import { replaceText, splitText } from "./text.js";

/** Splits a command line into words: white space separates, double quotes group and vanish. */
export function splitCmdline(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (!quoted && (c === " " || c === "\t" || c === "\n" || c === "\r")) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** Key/value pairs in order; a word without `=` has the value undefined. Keys use `_`, not `-`. */
export function cmdlinePairs(text: string): Array<{ key: string; value: string | undefined }> {
  const out: Array<{ key: string; value: string | undefined }> = [];
  for (const w of splitCmdline(text)) {
    const eq = w.indexOf("=");
    const rawKey = eq < 0 ? w : w.slice(0, eq);
    out.push({ key: replaceText(rawKey, "-", "_"), value: eq < 0 ? undefined : w.slice(eq + 1) });
  }
  return out;
}

/**
 * Every path `storage_init.ddi=` names on `cmdline`, in every spelling of the key
 * (`storage-init.ddi=` too) and every occurrence (the init takes the last; a check takes them
 * all), each comma-separated path once.
 */
export function ddiPathsOf(cmdline: string): string[] {
  const out: string[] = [];
  for (const { key, value } of cmdlinePairs(cmdline)) {
    if (key !== "storage_init.ddi" || value === undefined) continue;
    for (const p of splitText(value, ",")) if (p !== "" && out.indexOf(p) < 0) out.push(p);
  }
  return out;
}
