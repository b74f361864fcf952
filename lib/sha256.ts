/**
 * SHA-256 (FIPS 180-4), for the fingerprint of the certificate that signed a root hash. Pure.
 *
 * Written here rather than taken from a library: the init is compiled by porffor, which takes
 * one bundle of plain functions over typed arrays; a general hashing package (its classes,
 * streaming state and many algorithms) would cost more than these lines, which are checked
 * against node:crypto byte for byte under Node and compiled natively (tests/sha256.test.ts, the
 * native pure suite). Shifts are by constants, as porffor parses them (porffor: parser-shift-left).
 */
import { toHex } from "./hex.js";

const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
];

/** One 64-byte block of `m` at `o` into the state `h`. */
function compress(h: number[], w: number[], m: Uint8Array, o: number): void {
  for (let i = 0; i < 16; i++)
    w[i] = m[o + 4 * i] * 16777216 + m[o + 4 * i + 1] * 65536 + m[o + 4 * i + 2] * 256 + m[o + 4 * i + 3];
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15] as number;
    const b = w[i - 2] as number;
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) >>> 0;
  }
  // Array reads typed as numbers, so that porffor compiles the rounds as arithmetic on numbers.
  let a = h[0] as number;
  let b = h[1] as number;
  let c = h[2] as number;
  let d = h[3] as number;
  let e = h[4] as number;
  let f = h[5] as number;
  let g = h[6] as number;
  let hh = h[7] as number;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    // porffor: bitwise-not-wide (~e is wrong for e >= 2^31)
    const ch = (e & f) ^ ((e ^ 0xffffffff) & g);
    const t1 = (hh + S1 + ch + (K[i] as number) + (w[i] as number)) >>> 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) >>> 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) >>> 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) >>> 0;
  }
  h[0] = ((h[0] as number) + a) >>> 0;
  h[1] = ((h[1] as number) + b) >>> 0;
  h[2] = ((h[2] as number) + c) >>> 0;
  h[3] = ((h[3] as number) + d) >>> 0;
  h[4] = ((h[4] as number) + e) >>> 0;
  h[5] = ((h[5] as number) + f) >>> 0;
  h[6] = ((h[6] as number) + g) >>> 0;
  h[7] = ((h[7] as number) + hh) >>> 0;
}

/** The SHA-256 digest of `data[start, end)`. */
export function sha256(data: Uint8Array, start: number = 0, end: number = data.length): Uint8Array {
  // Plain arrays of numbers kept unsigned with >>> 0: a Uint32Array would link its prototype's methods.
  const h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const w: number[] = [];
  for (let i = 0; i < 64; i++) w.push(0);
  const n = end - start;
  let o = start;
  for (; o + 64 <= end; o += 64) compress(h, w, data, o);
  // The tail, the 0x80 byte, zeros and the length in bits (big-endian; n < 2^53 / 8).
  const tail = new Uint8Array(n % 64 < 56 ? 64 : 128);
  for (let i = 0; o + i < end; i++) tail[i] = data[o + i];
  tail[n % 64] = 0x80;
  let bits = n * 8;
  for (let i = tail.length - 1; i >= tail.length - 8; i--) {
    tail[i] = bits % 256;
    bits = Math.floor(bits / 256);
  }
  for (let t = 0; t < tail.length; t += 64) compress(h, w, tail, t);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    out[4 * i] = h[i] >>> 24;
    out[4 * i + 1] = (h[i] >>> 16) & 255;
    out[4 * i + 2] = (h[i] >>> 8) & 255;
    out[4 * i + 3] = h[i] & 255;
  }
  return out;
}

/** The SHA-256 digest of `data[start, end)` as lower-case hex. */
export function sha256Hex(data: Uint8Array, start: number = 0, end: number = data.length): string {
  return toHex(sha256(data, start, end));
}
