/**
 * Base64 (RFC 4648, the standard alphabet, with padding), decoded strictly: no white space, no
 * characters outside the alphabet, padding only at the end, and zero bits where the padding
 * leaves some over. Pure.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The value of one base64 character, or -1. */
function sextet(c: number): number {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c === 43) return 62;
  if (c === 47) return 63;
  return -1;
}

/** The bytes `text` encodes, or an error message naming what is wrong with it. */
export function decodeBase64(text: string): { bytes?: Uint8Array; error?: string } {
  const n = text.length;
  if (n % 4 !== 0) return { error: "its length " + n + " is not a multiple of 4" };
  let pad = 0;
  if (n > 0 && text.charCodeAt(n - 1) === 61) pad = text.charCodeAt(n - 2) === 61 ? 2 : 1;
  const out = new Uint8Array((n / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    let v = 0;
    for (let j = 0; j < 4; j++) {
      const at = i + j;
      const c = text.charCodeAt(at);
      let s = 0;
      if (at >= n - pad) {
        if (c !== 61) return { error: "a character other than '=' after its padding, at " + at };
      } else {
        s = sextet(c);
        if (s < 0) return { error: "a character outside the base64 alphabet at " + at };
      }
      v = v * 64 + s;
    }
    const last = i + 4 >= n;
    out[o++] = (v >> 16) & 255;
    if (!last || pad < 2) out[o++] = (v >> 8) & 255;
    else if (((v >> 8) & 255) !== 0) return { error: "bits set in its padding" };
    if (!last || pad < 1) out[o++] = v & 255;
    else if ((v & 255) !== 0) return { error: "bits set in its padding" };
  }
  return { bytes: out };
}

/** Base64 of `b`, padded (for tests and the image tools). */
export function encodeBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 3) {
    const v = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8) | (i + 2 < b.length ? b[i + 2] : 0);
    s += ALPHABET[(v >> 18) & 63] + ALPHABET[(v >> 12) & 63];
    s += i + 1 < b.length ? ALPHABET[(v >> 6) & 63] : "=";
    s += i + 2 < b.length ? ALPHABET[v & 63] : "=";
  }
  return s;
}
