/**
 * Byte helpers shared by the shim and the parsers: UTF-8 and C strings, little-endian fields.
 * Pure; behaves identically under Node and compiled natively (tests/native).
 */

/** UTF-8 bytes of `s` (lone surrogates become U+FFFD). */
export function utf8Encode(s: string): Uint8Array {
  // Almost everything is ASCII (paths, log lines): one pass, no intermediate array.
  const ascii = new Uint8Array(s.length);
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    ascii[i] = c;
  }
  if (i === s.length) return ascii;
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  const u = new Uint8Array(out.length);
  for (let i = 0; i < out.length; i++) u[i] = out[i];
  return u;
}

/**
 * Decodes UTF-8; malformed sequences become U+FFFD, one per bad byte.
 * Builds short pieces and joins them: porffor copies on every `+=`, so one long
 * concatenation would be quadratic in the length.
 */
export function utf8Decode(b: Uint8Array, start: number = 0, end: number = b.length): string {
  const pieces: string[] = [];
  let s = "";
  let i = start;
  while (i < end) {
    const c = b[i];
    let cp = 0xfffd;
    let n = 1;
    if (c < 0x80) cp = c;
    else if (c >= 0xc2 && c < 0xe0 && i + 1 < end && (b[i + 1] & 0xc0) === 0x80) {
      cp = ((c & 31) << 6) | (b[i + 1] & 63);
      n = 2;
    } else if (c >= 0xe0 && c < 0xf0 && i + 2 < end && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80) {
      const v = ((c & 15) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63);
      if (v >= 0x800 && (v < 0xd800 || v > 0xdfff)) {
        cp = v;
        n = 3;
      }
    } else if (
      c >= 0xf0 &&
      c < 0xf5 &&
      i + 3 < end &&
      (b[i + 1] & 0xc0) === 0x80 &&
      (b[i + 2] & 0xc0) === 0x80 &&
      (b[i + 3] & 0xc0) === 0x80
    ) {
      const v = ((c & 7) << 18) | ((b[i + 1] & 63) << 12) | ((b[i + 2] & 63) << 6) | (b[i + 3] & 63);
      if (v >= 0x10000 && v <= 0x10ffff) {
        cp = v;
        n = 4;
      }
    }
    if (cp >= 0x10000) {
      const v = cp - 0x10000;
      s += String.fromCharCode(0xd800 + (v >> 10), 0xdc00 + (v & 1023));
    } else s += String.fromCharCode(cp);
    i += n;
    if (s.length >= 128) {
      pieces.push(s);
      s = "";
    }
  }
  if (pieces.length === 0) return s;
  pieces.push(s);
  return pieces.join("");
}

/** `s` as UTF-8 followed by a NUL: what the kernel takes as a path. */
export function cString(s: string): Uint8Array {
  const b = utf8Encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b, 0);
  return out;
}

/** The string up to the first NUL in b[start, end). */
export function readCString(b: Uint8Array, start: number, end: number): string {
  let e = start;
  while (e < end && b[e] !== 0) e++;
  return utf8Decode(b, start, e);
}

/**
 * The NUL-terminated strings in b[0, end), decoded as UTF-8 as execve re-encodes them (argv and
 * environ; the inverse of cStringList).
 */
export function splitNul(b: Uint8Array, end: number): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < end; i++) {
    if (b[i] !== 0) continue;
    out.push(utf8Decode(b, start, i));
    start = i + 1;
  }
  return out;
}

/** Several strings as one buffer of NUL-terminated strings (argv/envp for execve). */
export function cStringList(list: string[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const s of list) {
    const c = cString(s);
    parts.push(c);
    total += c.length;
  }
  const out = new Uint8Array(total === 0 ? 1 : total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function u16le(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

export function u32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** A u64 as a number; exact up to 2^53, which covers every size and offset we handle. */
export function u64le(b: Uint8Array, o: number): number {
  return u32le(b, o) + u32le(b, o + 4) * 4294967296;
}

export function putU32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 255;
  b[o + 1] = (v >>> 8) & 255;
  b[o + 2] = (v >>> 16) & 255;
  b[o + 3] = (v >>> 24) & 255;
}

export function putU64le(b: Uint8Array, o: number, v: number): void {
  putU32le(b, o, v % 4294967296);
  putU32le(b, o + 4, Math.floor(v / 4294967296));
}
