/**
 * Hexadecimal, GUIDs and UTF-16LE text: the encodings of GPT headers, EFI variables and the
 * verity superblock. Pure.
 */

const HEX = "0123456789abcdef";

/** Two lower-case hex digits of a byte. */
export function hexByte(v: number): string {
  return HEX[v >> 4] + HEX[v & 15];
}

/** Lower-case hex of bytes (not TypedArray.join: porffor: typedarray-join). */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += hexByte(b[i]);
  return s;
}

/** The UTF-16LE text in b[start, end), up to the first NUL (GPT partition names, EFI variables). */
export function utf16leText(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let o = start; o + 1 < end; o += 2) {
    const c = b[o] | (b[o + 1] << 8);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** A GUID as stored on disk (first three fields little-endian) to its text form. */
export function guidToString(b: Uint8Array, o: number): string {
  let s = "";
  const order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15];
  for (const i of order) s += i < 0 ? "-" : hexByte(b[o + i]);
  return s;
}

/** 32 hex digits as a GUID's text form 8-4-4-4-12 (systemd's partition UUIDs from a root hash). */
export function uuidFromHex(hex: string): string {
  return (
    hex.slice(0, 8) +
    "-" +
    hex.slice(8, 12) +
    "-" +
    hex.slice(12, 16) +
    "-" +
    hex.slice(16, 20) +
    "-" +
    hex.slice(20, 32)
  );
}

/** True when `s` is a GUID's text form: 8-4-4-4-12 hex digits, either case. */
export function isGuid(s: string): boolean {
  if (s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/** True when every character of `s` is a hex digit, in either case (true for ""). */
export function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const digit = c >= 48 && c <= 57;
    const lower = c >= 97 && c <= 102;
    const upper = c >= 65 && c <= 70;
    if (!digit && !lower && !upper) return false;
  }
  return true;
}

/** The text form to the on-disk bytes; undefined when `s` is not a GUID. */
export function guidToBytes(s: string): Uint8Array | undefined {
  if (s.length !== 36 || s[8] !== "-" || s[13] !== "-" || s[18] !== "-" || s[23] !== "-") return undefined;
  const hex = (s.slice(0, 8) + s.slice(9, 13) + s.slice(14, 18) + s.slice(19, 23) + s.slice(24)).toLowerCase();
  const raw = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const hi = HEX.indexOf(hex[2 * i]);
    const lo = HEX.indexOf(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return undefined;
    raw[i] = hi * 16 + lo;
  }
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[order[i]] = raw[i];
  return out;
}
