/**
 * Quoting for log lines. Pure.
 */
import { hexByte } from "./hex.js";

/**
 * Quotes a path or value for a log line: printable ASCII stays, `"` and `\\` are escaped, and
 * every other character becomes \\xNN or \\uNNNN, so that names read from a hostile disk cannot
 * inject terminal control sequences. Not JSON.stringify (porffor: json-stringify-wide).
 */
export function quote(s: string): string {
  return escaped(s, false);
}

/** `s` between double quotes, `"` and `\\` escaped, what is not printable ASCII as \\uNNNN (or \\xNN below 256 when not `json`). */
function escaped(s: string, json: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92) out += "\\" + s[i];
    else if (c >= 32 && c < 127) out += s[i];
    else if (c < 256 && !json) out += "\\x" + hexByte(c);
    else out += "\\u" + hexByte(c >> 8) + hexByte(c & 255);
  }
  return out + '"';
}

/**
 * `s` as a JSON string: printable ASCII stays, `"` and `\\` are escaped, every other character
 * is \\uNNNN (JSON has no \\x), so that the result is ASCII whatever a hostile name held. Not
 * JSON.stringify (porffor: json-stringify-wide).
 */
export function jsonString(s: string): string {
  return escaped(s, true);
}
