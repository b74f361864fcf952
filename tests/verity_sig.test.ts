import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParseError } from "../lib/errors.js";
import { quote } from "../lib/quote.js";
import { parseVeritySignature, SIG_BYTES_MAX, signatureName } from "../runtime/verity_sig.js";
import { rng } from "./rng.js";

const HASH = "0123456789abcdef".repeat(4);

/** A PKCS#7 over `text` made by openssl (detached, DER), and the SHA-256 of the signer's certificate. */
function opensslSignature(text: string): { der: Buffer; fingerprint: string } {
  const dir = mkdtempSync(join(tmpdir(), "verity-sig-"));
  try {
    const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    run([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "k.pem",
      "-out",
      "c.pem",
      "-days",
      "30",
      "-subj",
      "/CN=storage-init test",
    ]);
    writeFileSync(join(dir, "h"), text);
    run([
      "smime",
      "-sign",
      "-in",
      "h",
      "-binary",
      "-noattr",
      "-outform",
      "DER",
      "-signer",
      "c.pem",
      "-inkey",
      "k.pem",
      "-out",
      "s.p7",
    ]);
    const fp = run(["x509", "-in", "c.pem", "-noout", "-fingerprint", "-sha256"]).toString();
    return {
      der: readFileSync(join(dir, "s.p7")),
      fingerprint: fp
        .slice(fp.indexOf("=") + 1)
        .trim()
        .split(":")
        .join("")
        .toLowerCase(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const REAL = opensslSignature(HASH);

/** The partition's bytes: `json`, NUL-padded to 4 KiB. */
function partition(json: string, size = 4096): Uint8Array {
  const b = new Uint8Array(size);
  b.set(Buffer.from(json, "latin1"));
  return b;
}

const good = (extra = "") =>
  `{"rootHash":"${HASH}","signature":"${REAL.der.toString("base64")}","certificateFingerprint":"${REAL.fingerprint}"${extra}}`;

test("parseVeritySignature() reads the JSON systemd-repart writes: the root hash, the PKCS#7 and the fingerprint", (t) => {
  const s = parseVeritySignature(partition(good()));
  t.is(s.rootHash, HASH);
  t.deepEqual(Buffer.from(s.pkcs7), REAL.der);
  t.is(s.fingerprint, REAL.fingerprint);
  t.is(signatureName(s), `signature of root hash ${HASH} (certificate SHA-256 ${REAL.fingerprint})`);
});

test("parseVeritySignature() skips unknown members of any shape, takes escapes and white space, and upper-case hex", (t) => {
  const json = ` {\n "v": [1, -2.5e3, true, null, {"a": [[]]}], "rootHash" : "${HASH.toUpperCase()}", "x\\u0041\\n": "\\"",\t"signature":"${REAL.der.toString("base64")}"}\n`;
  const s = parseVeritySignature(partition(json));
  t.is(s.rootHash, HASH);
  t.is(s.fingerprint, "", "the fingerprint is optional");
});

test("parseVeritySignature() names what is wrong with a hostile partition", (t) => {
  const sig = REAL.der.toString("base64");
  const cases: Array<[Uint8Array, string]> = [
    [new Uint8Array(16).fill(0x41), "is not NUL-terminated within its first 16 bytes"],
    [
      (() => {
        const b = partition(good());
        b[4000] = 1;
        return b;
      })(),
      "holds data after its JSON, at byte 4000",
    ],
    [partition('{"rootHash":"\u00e9"}'), "holds a byte that is not ASCII (0xe9) at 13"],
    [partition(""), "is not JSON: expected '{' at byte 0"],
    [partition("[]"), "is not JSON: expected '{' at byte 0"],
    [partition(`{"signature":"${sig}"}`), "has no rootHash"],
    [partition(`{"rootHash":"${HASH}"}`), "has no signature"],
    [partition(`{"rootHash":"${HASH}","rootHash":"${HASH}","signature":"${sig}"}`), "has two rootHash members"],
    [partition(`{"rootHash":1,"signature":"${sig}"}`), "member rootHash is not a string"],
    [
      partition(`{"rootHash":"${HASH}","signature":"${sig}"} {}`),
      "holds more than one JSON value (byte " + (HASH.length + sig.length + 31) + ")",
    ],
    [partition(`{"rootHash":"xyz","signature":"${sig}"}`), 'rootHash is invalid: is not hexadecimal: "xyz"'],
    [
      partition(`{"rootHash":"${HASH}","signature":"${sig}\\n"}`),
      "signature is not base64: its length " + (sig.length + 1) + " is not a multiple of 4",
    ],
    [partition(`{"rootHash":"${HASH}","signature":""}`), "signature is empty"],
    [
      partition(`{"rootHash":"${HASH}","signature":"${"A".repeat(43692)}"}`, 65536),
      `signature has 32769 bytes; a kernel user key holds at most ${SIG_BYTES_MAX}`,
    ],
    [
      partition(`{"rootHash":"${HASH}","signature":"${sig}","certificateFingerprint":"abc"}`),
      "certificateFingerprint is not 64 hex digits (SHA-256)",
    ],
    [partition(`{"x":${"[".repeat(9)}${"]".repeat(9)},"rootHash":"${HASH}"}`), "nests values deeper than 8"],
    [partition(`{"x":tru,"rootHash":"${HASH}"}`), "is not JSON: an unexpected value at byte 5"],
    [partition('{"rootHash":"abc'), "is not JSON: a string is not closed"],
    [partition('{"rootHash":"a\tb"}'), "is not JSON: a control character in a string at byte 14"],
    [partition('{"rootHash":"\\x"}'), "is not JSON: a bad escape at byte 14"],
    [new Uint8Array(65537), "is read only up to 65536 bytes"],
  ];
  for (const [bytes, message] of cases) {
    t.throws(
      () => parseVeritySignature(bytes),
      { any: true, instanceOf: ParseError, message: "the root-verity-sig partition " + message },
      message,
    );
  }
});

test("parseVeritySignature() on 10,000 mutated partitions returns a signature or a ParseError, nothing else", (t) => {
  const next = rng(2024);
  const base = partition(good(), 2048);
  let parsed = 0;
  for (let i = 0; i < 10000; i++) {
    const b = base.slice();
    const flips = 1 + (next() % 4);
    for (let j = 0; j < flips; j++) {
      const at = next() % 3 === 0 ? next() % b.length : next() % 220;
      b[at] = next() % 2 === 0 ? next() & 0x7f : '{}[]":,\\ 0'.charCodeAt(next() % 10);
    }
    try {
      const s = parseVeritySignature(b);
      t.true(s.pkcs7.length > 0 && s.rootHash.length >= 32);
      parsed++;
    } catch (e) {
      if (!(e instanceof ParseError)) t.fail(`mutation ${i} threw ${String(e)}`);
    }
  }
  t.true(parsed > 0 && parsed < 10000, `${parsed} parsed`);
});

/** A partition whose unknown member "x" is `value`, then the root hash and the signature. */
const withMember = (value: string) =>
  partition(`{"x":${value},"rootHash":"${HASH}","signature":"${REAL.der.toString("base64")}"}`);

/** Node's JSON.parse as the reference: does it take `text`? */
function jsonTakes(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

test("parseVeritySignature() takes what JSON.parse takes: every number form, literal, escape and white space", (t) => {
  const values = [
    ...["0", "-0", "9", "10", "1.5", "1.0e10", "1E5", "1e+5", "-2.5E-3", "1e-5", "90"],
    ...["01", "-", "1.", "1e", "1e+", ".5", "+1", "1.e5", "00", "-a"],
    ...["true", "false", "null", "tru", "nul", "fals", "truex"],
    ...['"a b~"', '"\\u0041\\u004a\\u00aB\\u00Fe\\u09f0"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"x'],
    ...['"\\u00G0"', '"\\u00:0"', '"\\u00/0"', '"\\u00@0"', '"\\u00`0"', '"\\u00g0"', '"\\u12"', '"\\q"'],
    ...["[]", "{}", "[1, 2]", '{"a":[],"b":{}}', "[ 1 ,\r\n\t2 ]", "[1 2]", "[1,]", '{"a" 1}', '{"a":1 "b":2}'],
    ...["[".repeat(8) + "]".repeat(8), "{}}", "[}", "{]"],
  ];
  for (const v of values) {
    const bytes = withMember(v);
    const text = Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString("latin1");
    if (jsonTakes(text)) t.notThrows(() => parseVeritySignature(bytes), v);
    else t.throws(() => parseVeritySignature(bytes), { any: true, instanceOf: ParseError }, v);
  }
});

test("parseVeritySignature() decodes each escape as JSON.parse does, in strings of any length", (t) => {
  const invalid = (escapedHash: string) =>
    (
      t.throws(
        () =>
          parseVeritySignature(partition(`{"rootHash":"${escapedHash}","signature":"${REAL.der.toString("base64")}"}`)),
        { any: true },
      ) as ParseError
    ).message;
  for (const e of [
    '\\"\\\\\\/\\b\\f\\n\\r\\t',
    "\\u004a\\u00Fe\\u00aB\\u0009\\uABCD\\u12eF\\u0000",
    "ab\\u0067".repeat(60),
  ]) {
    t.is(
      invalid(e),
      "the root-verity-sig partition rootHash is invalid: is not hexadecimal: " + quote(JSON.parse(`"${e}"`)),
      e,
    );
  }
  const spelled = [...HASH.toUpperCase()].map((ch) => "\\u00" + ch.charCodeAt(0).toString(16)).join("");
  const s = parseVeritySignature(partition(`{"rootHash":"${spelled}","signature":"${REAL.der.toString("base64")}"}`));
  t.is(s.rootHash, HASH, "every digit of the hash written as \\u00XX");
  t.is(signatureName(s), `signature of root hash ${HASH} (certificate fingerprint not given)`);
});

test("parseVeritySignature() names a second member, a missing comma, and takes a signature of 32,767 bytes", (t) => {
  const sig = REAL.der.toString("base64");
  const message = (json: string) =>
    (t.throws(() => parseVeritySignature(partition(json)), { any: true, instanceOf: ParseError }) as ParseError)
      .message;
  const prefix = "the root-verity-sig partition ";
  t.is(message("{}"), prefix + "has no rootHash");
  t.is(message("{ \r\n}"), prefix + "has no rootHash");
  t.is(
    message(`{"rootHash":"${HASH}","signature":"${sig}","signature":"${sig}"}`),
    prefix + "has two signature members",
  );
  const fp = "ab".repeat(32);
  t.is(
    message(
      `{"certificateFingerprint":"${fp}","rootHash":"${HASH}","signature":"${sig}","certificateFingerprint":"${fp}"}`,
    ),
    prefix + "has two certificateFingerprint members",
  );
  const noComma = `{"rootHash":"${HASH}" "signature":"${sig}"}`;
  t.is(message(noComma), prefix + "is not JSON: expected ',' or '}' at byte " + noComma.indexOf('"signature"'));
  const inArray = `{"x":[1 2],"rootHash":"${HASH}"}`;
  t.is(message(inArray), prefix + "is not JSON: expected ',' or ']' at byte " + inArray.indexOf("2"));
  const inObject = `{"x":{"a":1 "b":2},"rootHash":"${HASH}"}`;
  t.is(message(inObject), prefix + "is not JSON: expected ',' or '}' at byte " + inObject.indexOf('"b"'));
  t.is(message('{"rootHash":"\\u00x0"}'), prefix + "is not JSON: a bad \\u escape at byte 17");
  const most = Buffer.alloc(SIG_BYTES_MAX, 7).toString("base64");
  t.is(
    parseVeritySignature(partition(`{"rootHash":"${HASH}","signature":"${most}"}`, 65536)).pkcs7.length,
    SIG_BYTES_MAX,
  );
});
