/**
 * The root-verity-sig partition of a DDI (UAPI Discoverable Partitions Specification): JSON
 * `{"rootHash": hex, "signature": base64 DER PKCS#7 over the rootHash text,
 * "certificateFingerprint": hex SHA-256 of the signer's DER certificate}`, NUL-padded. Read as
 * hostile input: bounded sizes, ASCII only, one object whose members are read once each, nested
 * values of unknown members skipped to a bounded depth, nothing but NULs after the object.
 * Nothing here verifies the signature: the kernel does (runtime/root_device.ts).
 */
import { decodeBase64 } from "../lib/base64.js";
import { ParseError } from "../lib/errors.js";
import { isHex } from "../lib/hex.js";
import { checkRootHash } from "../lib/root_hash.js";

/** The most of the partition read: its JSON and padding must end within it. */
export const SIG_READ_MAX = 65536;
/** The largest PKCS#7 a `user` key holds (security/keys/user_defined.c: 32767 bytes). */
export const SIG_BYTES_MAX = 32767;
/** How deep unknown members' values may nest. */
const DEPTH_MAX = 8;

export interface VeritySignature {
  /** Lower-case hex, as signed. */
  rootHash: string;
  /** DER PKCS#7 (detached) over the rootHash text. */
  pkcs7: Uint8Array;
  /** Lower-case hex SHA-256 of the signer's certificate, or "" when the partition names none. */
  fingerprint: string;
}

/** The JSON's bytes, up to `end`, and the position read next. */
interface Cursor {
  b: Uint8Array;
  end: number;
  i: number;
}

function fail(what: string): never {
  throw new ParseError("the root-verity-sig partition " + what);
}

/** The byte at the cursor, or -1 at the end. */
function peek(c: Cursor): number {
  return c.i < c.end ? c.b[c.i] : -1;
}

function skipSpace(c: Cursor): void {
  for (;;) {
    const ch = peek(c);
    if (ch !== 32 && ch !== 9 && ch !== 10 && ch !== 13) return;
    c.i++;
  }
}

/** Consumes `ch` (a character code) after white space. */
function expect(c: Cursor, ch: number): void {
  skipSpace(c);
  if (peek(c) !== ch) fail("is not JSON: expected '" + String.fromCharCode(ch) + "' at byte " + c.i);
  c.i++;
}

function hexValue(ch: number): number {
  if (ch >= 48 && ch <= 57) return ch - 48;
  if (ch >= 97 && ch <= 102) return ch - 87;
  if (ch >= 65 && ch <= 70) return ch - 55;
  return -1;
}

/** The character code that a backslash and `e` stand for; -1 for `u` (four hex digits follow), -2 for none. */
function escaped(e: number): number {
  if (e === 34 || e === 92 || e === 47) return e;
  if (e === 98) return 8;
  if (e === 102) return 12;
  if (e === 110) return 10;
  if (e === 114) return 13;
  if (e === 116) return 9;
  if (e === 117) return -1;
  return -2;
}

/**
 * A JSON string at the cursor, its escapes decoded. Built in short pieces joined at the end:
 * porffor copies on every `+=` (lib/bytes.ts utf8Decode), and a signature is tens of KiB.
 */
function readString(c: Cursor): string {
  expect(c, 34);
  const pieces: string[] = [];
  let out = "";
  for (;;) {
    if (out.length >= 128) {
      pieces.push(out);
      out = "";
    }
    const ch = peek(c);
    if (ch < 0) fail("is not JSON: a string is not closed");
    c.i++;
    if (ch === 34) break;
    if (ch < 32) fail("is not JSON: a control character in a string at byte " + (c.i - 1));
    if (ch !== 92) {
      out += String.fromCharCode(ch);
      continue;
    }
    const e = escaped(peek(c));
    c.i++;
    if (e === -2) fail("is not JSON: a bad escape at byte " + (c.i - 1));
    if (e >= 0) {
      out += String.fromCharCode(e);
      continue;
    }
    let v = 0;
    for (let j = 0; j < 4; j++) {
      const d = hexValue(peek(c));
      c.i++;
      if (d < 0) fail("is not JSON: a bad \\u escape at byte " + (c.i - 1));
      v = v * 16 + d;
    }
    out += String.fromCharCode(v);
  }
  if (pieces.length === 0) return out;
  pieces.push(out);
  return pieces.join("");
}

/** Consumes the digits at the cursor; returns how many. */
function digits(c: Cursor): number {
  const start = c.i;
  while (peek(c) >= 48 && peek(c) <= 57) c.i++;
  return c.i - start;
}

/** Consumes `word` (true, false, null) if it is at the cursor. */
function literal(c: Cursor, word: string): boolean {
  for (let j = 0; j < word.length; j++) if (c.i + j >= c.end || c.b[c.i + j] !== word.charCodeAt(j)) return false;
  c.i += word.length;
  return true;
}

/** Skips one JSON value of any kind, nested no deeper than DEPTH_MAX. */
function skipValue(c: Cursor, depth: number): void {
  if (depth > DEPTH_MAX) fail("nests values deeper than " + DEPTH_MAX);
  skipSpace(c);
  const ch = peek(c);
  if (ch === 34) {
    readString(c);
    return;
  }
  if (ch === 123 || ch === 91) {
    // `{` ends with `}` (125), `[` with `]` (93).
    const close = ch + 2;
    c.i++;
    skipSpace(c);
    if (peek(c) === close) {
      c.i++;
      return;
    }
    for (;;) {
      if (ch === 123) {
        readString(c);
        expect(c, 58);
      }
      skipValue(c, depth + 1);
      skipSpace(c);
      const next = peek(c);
      c.i++;
      if (next === close) return;
      if (next !== 44) fail("is not JSON: expected ',' or '" + String.fromCharCode(close) + "' at byte " + (c.i - 1));
    }
  }
  if (literal(c, "true") || literal(c, "false") || literal(c, "null")) return;
  // A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  const start = c.i;
  if (peek(c) === 45) c.i++;
  const lead = peek(c);
  const n = digits(c);
  let ok = n === 1 || (n > 1 && lead !== 48);
  if (ok && peek(c) === 46) {
    c.i++;
    ok = digits(c) > 0;
  }
  if (ok && (peek(c) === 101 || peek(c) === 69)) {
    c.i++;
    if (peek(c) === 43 || peek(c) === 45) c.i++;
    ok = digits(c) > 0;
  }
  if (!ok) fail("is not JSON: an unexpected value at byte " + start);
}

/** The end of the JSON in `data`: its first NUL, after which only NULs may follow; ASCII before it. */
function jsonEnd(data: Uint8Array): number {
  let end = data.length;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      end = i;
      break;
    }
    if (data[i] > 126) fail("holds a byte that is not ASCII (0x" + data[i].toString(16) + ") at " + i);
  }
  if (end === data.length) fail("is not NUL-terminated within its first " + data.length + " bytes");
  for (let i = end; i < data.length; i++) if (data[i] !== 0) fail("holds data after its JSON, at byte " + i);
  return end;
}

/** Parses the partition's bytes (at most SIG_READ_MAX of them); throws ParseError naming what is wrong. */
export function parseVeritySignature(data: Uint8Array): VeritySignature {
  if (data.length > SIG_READ_MAX) fail("is read only up to " + SIG_READ_MAX + " bytes");
  const c: Cursor = { b: data, end: jsonEnd(data), i: 0 };
  let rootHash: string | undefined;
  let signature: string | undefined;
  let fingerprint: string | undefined;
  expect(c, 123);
  skipSpace(c);
  if (peek(c) === 125) c.i++;
  else {
    for (;;) {
      const key = readString(c);
      expect(c, 58);
      skipSpace(c);
      const known = key === "rootHash" || key === "signature" || key === "certificateFingerprint";
      if (known) {
        if (peek(c) !== 34) fail("member " + key + " is not a string");
        const v = readString(c);
        if (key === "rootHash") {
          if (rootHash !== undefined) fail("has two rootHash members");
          rootHash = v;
        } else if (key === "signature") {
          if (signature !== undefined) fail("has two signature members");
          signature = v;
        } else {
          if (fingerprint !== undefined) fail("has two certificateFingerprint members");
          fingerprint = v;
        }
      } else skipValue(c, 1);
      skipSpace(c);
      const next = peek(c);
      c.i++;
      if (next === 125) break;
      if (next !== 44) fail("is not JSON: expected ',' or '}' at byte " + (c.i - 1));
    }
  }
  skipSpace(c);
  if (c.i !== c.end) fail("holds more than one JSON value (byte " + c.i + ")");
  if (rootHash === undefined) fail("has no rootHash");
  if (signature === undefined) fail("has no signature");
  const hash = checkRootHash(rootHash);
  if (hash.hash === undefined) fail("rootHash is invalid: " + (hash.error ?? ""));
  const sig = decodeBase64(signature);
  if (sig.bytes === undefined) fail("signature is not base64: " + sig.error);
  if (sig.bytes.length === 0) fail("signature is empty");
  if (sig.bytes.length > SIG_BYTES_MAX)
    fail("signature has " + sig.bytes.length + " bytes; a kernel user key holds at most " + SIG_BYTES_MAX);
  let fp = "";
  if (fingerprint !== undefined) {
    const f = fingerprint.toLowerCase();
    if (f.length !== 64 || !isHex(f)) fail("certificateFingerprint is not 64 hex digits (SHA-256)");
    fp = f;
  }
  return { rootHash: hash.hash, pkcs7: sig.bytes, fingerprint: fp };
}

/** How a signature is named in the log: its root hash and the signer's certificate. */
export function signatureName(sig: VeritySignature): string {
  return (
    "signature of root hash " +
    sig.rootHash +
    " (certificate " +
    (sig.fingerprint === "" ? "fingerprint not given" : "SHA-256 " + sig.fingerprint) +
    ")"
  );
}
