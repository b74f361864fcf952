/**
 * The pure modules on fixed and generated inputs; Node and native output must be identical.
 */
import { cString, putU64le, u32le, u64le, utf8Decode, utf8Encode } from "../../lib/bytes.js";
import { decodeBase64 } from "../../lib/base64.js";
import { errorText } from "../../lib/errors.js";
import { toHex } from "../../lib/hex.js";
import { fixedPoint, formatMs, parseDecimal, roundHalfUp } from "../../lib/numbers.js";
import { jsonString, quote } from "../../lib/quote.js";
import { sha256Hex } from "../../lib/sha256.js";
import { splitCmdline } from "../../lib/cmdline_words.js";
import { parseCmdline, parseSeconds } from "../../runtime/cmdline.js";
import { kmsgRecord } from "../../runtime/log.js";
import { systemdState } from "../../runtime/switch_root.js";
import { parseVeritySignature } from "../../runtime/verity_sig.js";
import { compareVersions, parseVpickName } from "../../runtime/vpick.js";
import { parseDirents } from "../../syscalls/decode.js";
import { errnoName } from "../../syscalls/errno.js";
import type { DirEntry, Kernel } from "../../syscalls/kernel.js";
import { rng } from "../rng.js";

const CMDLINES = [
  "",
  "quiet roothash=ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789 ro",
  'init=/usr/lib/systemd/systemd storage_init.ddi="/EFI/My Images/root.raw" storage-init.timeout=2.5',
  "roothash=xyz storage_init.on_failure=explode storage_init.timeout=-1 init=sbin/init",
  'a="b c" "d=e f" g= storage_init.debug systemd.verity=0 systemd.verity_root_options=panic-on-corruption,,ignore-zero-blocks',
  "roothash=abc storage_init.esp=PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477de4 storage_init.failure_delay=250ms rootfstype=ext4",
  "storage_init.ddi=/a/../b roothash=0123456789abcdef0123456789abcdef0 storage_init.on_failure=shell",
];

export function run(_k: Kernel, _scratch: string): string[] {
  const out: string[] = [];
  // SHA-256 over every length around the block edges, and JSON strings of every character class.
  const shaNext = rng(256);
  const bytes = new Uint8Array(300);
  for (let i = 0; i < bytes.length; i++) bytes[i] = shaNext() & 255;
  for (let n = 0; n <= 130; n++) out.push("sha256 " + n + " " + sha256Hex(bytes, 7, 7 + n));
  out.push("json " + jsonString('a"\\\u0001\u00e9\u20ac/'));
  for (const c of CMDLINES) {
    out.push("split " + JSON.stringify(splitCmdline(c)));
    out.push("parse " + JSON.stringify(parseCmdline(c)));
  }
  const next = rng(12345);
  const alphabet = 'ab=" \t_-.roothashinitstorage_0123456789/';
  let digest = 0;
  for (let i = 0; i < 2000; i++) {
    let s = "";
    const len = next() % 40;
    for (let j = 0; j < len; j++) s += alphabet[next() % alphabet.length];
    const r = JSON.stringify(parseCmdline(s));
    for (let j = 0; j < r.length; j++) digest = (Math.imul(digest, 31) + r.charCodeAt(j)) >>> 0;
  }
  out.push("random cmdlines digest " + digest);
  const text = "héllo wörld \u20ac \ud83d\ude00";
  const enc = utf8Encode(text);
  out.push("utf8 " + toHex(enc) + " " + (utf8Decode(enc) === text));
  out.push("bad utf8 " + quote(utf8Decode(new Uint8Array([0x41, 0xc3, 0x28, 0xff, 0xe2, 0x82]))));
  out.push("quote " + quote('a"b\\c\n\u00e9\u20ac\x1b[31m'));
  out.push("cstring " + toHex(cString("ab")));
  const b = new Uint8Array(8);
  putU64le(b, 0, 0x123456789abc);
  out.push("u64 " + toHex(b) + " " + u64le(b, 0) + " " + u32le(b, 0));
  out.push("kmsg " + JSON.stringify(kmsgRecord(3, "two\nlines")));
  out.push("systemd state " + JSON.stringify(systemdState(1790000000123.456, 712.5) + systemdState(1000, 0.001)));
  out.push("roundHalfUp " + [0.5, 1.5, 2.5, -0.5, 2.4999].map(roundHalfUp).join(" "));
  out.push("formatMs " + [0, 0.04, 0.05, 33.2, 19.96, 1234.5678, -2.25].map(formatMs).join(" "));
  out.push(
    "fixedPoint " +
      [2855.4105, 0.0004, 0.0005, 7.9, -1.2345, 1e9 + 0.125].map((v) => fixedPoint(v, 3)).join(" ") +
      " " +
      fixedPoint(3.7, 0),
  );
  out.push(
    "parseDecimal " +
      ["20", "0.5", ".25", "1.0015", "1.", ".", "", "1e3", "1234567890123456"]
        .map((v) => String(parseDecimal(v, 1000)))
        .join(" ") +
      " " +
      String(parseDecimal("123456789012345", 1)),
  );
  out.push(
    "parseSeconds " +
      ["3", "0.5s", "20ms", "1.0015s", "-1", "9999999999999", "86400000s", "86400001s"]
        .map((v) => String(parseSeconds(v)))
        .join(" "),
  );
  out.push("errnoName " + [0, 1, 2, 17, 22, 40, 41, 61, 95, 129, 130, -1].map(errnoName).join(" "));
  out.push("kmsg long " + kmsgRecord(6, "x".repeat(2000)).length);
  // A getdents64 buffer: ".", "disk" (block), "loop-control" (char).
  const d = new Uint8Array(96);
  const rec = (off: number, reclen: number, type: number, name: string) => {
    d[off + 16] = reclen;
    d[off + 18] = type;
    for (let i = 0; i < name.length; i++) d[off + 19 + i] = name.charCodeAt(i);
  };
  rec(0, 24, 4, ".");
  rec(24, 24, 6, "disk");
  rec(48, 40, 2, "loop-control");
  const ents: DirEntry[] = [];
  parseDirents(d, 88, ents);
  out.push("dirents " + JSON.stringify(ents));
  try {
    d[48 + 16] = 48; // the last record now claims to run past the end
    parseDirents(d, 88, []);
    out.push("dirents overrun accepted");
  } catch (e) {
    out.push("dirents overrun: " + (e as Error).message);
  }
  out.push(
    "compareVersions " +
      [
        ["1.9", "1.10"],
        ["1.0~rc1", "1.0"],
        ["1.0^p1", "1.0"],
        ["007", "7"],
        ["1_2_3", "1.3.3"],
        ["A", "a"],
        ["2.0-1", "2.0.1"],
      ]
        .map((p) => String(compareVersions(p[0], p[1])))
        .join(" "),
  );
  for (const f of [
    "root_1.2.raw",
    "root_1.2_arm64+2-1.raw",
    "root_3~rc1_x86-64+0.raw",
    "root_1+01.raw",
    "root_1_vax.raw",
    "x.raw",
  ])
    out.push("vpick " + f + " " + JSON.stringify(parseVpickName("root", ".raw", f)));
  for (const b64 of ["", "QUI=", "QUJD", "QUJ=", "QU D", "QUJDRA=="]) {
    const r = decodeBase64(b64);
    out.push("base64 " + quote(b64) + " " + (r.bytes === undefined ? "error " + r.error : toHex(r.bytes)));
  }
  const hash = "0123456789abcdef".repeat(4);
  const sigs = [
    '{"rootHash":"' + hash + '","signature":"MIIB","certificateFingerprint":"' + "AB".repeat(32) + '"}',
    ' { "x" : [1, -2.5e3, true, null, {"a": [[]]}], "rootHash":"' + hash + '", "signature":"TQ==" } ',
    '{"rootHash":"' + hash + '","signature":"MIIB",}',
    '{"rootHash":"xyz","signature":"MIIB"}',
    '{"x":01,"rootHash":"' + hash + '"}',
    '{"rootHash":"a\\u00e9"}',
  ];
  for (const j of sigs) {
    const b = new Uint8Array(j.length + 8);
    for (let i = 0; i < j.length; i++) b[i] = j.charCodeAt(i);
    try {
      const v = parseVeritySignature(b);
      out.push("sig " + v.rootHash + " " + toHex(v.pkcs7) + " " + v.fingerprint);
    } catch (e) {
      out.push("sig error " + errorText(e));
    }
  }
  // Mutated signature partitions: the parse result or the error, folded into a digest.
  const gen = rng(4242);
  const base = sigs[0].slice(0, sigs[0].length - 1) + ', "x": [1, {"y": "\\u0041"}]}';
  let sigDigest = 0;
  for (let i = 0; i < 3000; i++) {
    const b = new Uint8Array(base.length + 16);
    for (let j = 0; j < base.length; j++) b[j] = base.charCodeAt(j);
    const n = 1 + (gen() % 4);
    for (let j = 0; j < n; j++)
      b[gen() % b.length] = gen() % 2 === 0 ? gen() & 0x7f : '{}[]":,\\ 0'.charCodeAt(gen() % 10);
    let r = "";
    try {
      const v = parseVeritySignature(b);
      r = v.rootHash + toHex(v.pkcs7) + v.fingerprint;
    } catch (e) {
      r = errorText(e);
    }
    for (let j = 0; j < r.length; j++) sigDigest = (Math.imul(sigDigest, 31) + r.charCodeAt(j)) >>> 0;
  }
  out.push("mutated signature digest " + sigDigest);
  return out;
}
