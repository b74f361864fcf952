// pkcs7Signer() on messages openssl makes the way systemd-repart signs a root hash (detached,
// binary, no attributes: PKCS7_DETACHED|PKCS7_BINARY|PKCS7_NOATTR), and on the ones an attacker
// would make: another key's signature carrying the pinned certificate, two certificates, none,
// a subject-key-identifier signer, and bytes mutated at random.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ParseError } from "../lib/errors.js";
import { pkcs7Signer } from "../runtime/pkcs7.js";
import { certificateFingerprint, testKey } from "../qemu/images.js";
import { inTempDir, rng, run } from "./helpers.js";

const HASH = "0123456789abcdef".repeat(4);

/** A DER PKCS#7 over HASH made by `openssl cms -sign` with `args`. */
function sign(args: string[]): Uint8Array {
  return inTempDir((dir) => {
    const content = join(dir, "hash");
    const out = join(dir, "sig.p7");
    run("sh", ["-c", `printf %s ${HASH} > ${content}`]);
    run("openssl", [
      "cms",
      "-sign",
      "-binary",
      "-noattr",
      "-nosmimecap",
      "-outform",
      "DER",
      "-in",
      content,
      "-out",
      out,
      ...args,
    ]);
    return new Uint8Array(readFileSync(out));
  });
}

const mok = testKey("mok");
const other = testKey("other");
const by = (k: { key: string; cert: string }) => ["-signer", k.cert, "-inkey", k.key];

test("pkcs7Signer() computes the SHA-256 of the one certificate that signed, as openssl computes it", (t) => {
  t.deepEqual(pkcs7Signer(sign(by(mok))), { fingerprint: certificateFingerprint(mok.cert) });
  t.deepEqual(pkcs7Signer(sign(by(other))), { fingerprint: certificateFingerprint(other.cert) });
});

const refuses = (t: import("ava").ExecutionContext, der: Uint8Array, message: string) =>
  t.throws(() => pkcs7Signer(der), { any: true, instanceOf: ParseError, message: `the signature's PKCS#7 ${message}` });

test("pkcs7Signer() refuses a message whose signer is not the one certificate it carries", (t) => {
  refuses(
    t,
    sign([...by(other), "-nocerts", "-certfile", mok.cert]),
    "is signed by a key other than the certificate it carries",
  );
  refuses(
    t,
    sign([...by(other), "-certfile", mok.cert]),
    "carries 2 certificates; exactly one, the signer's, is taken",
  );
  refuses(t, sign([...by(mok), "-nocerts"]), "carries 0 certificates; exactly one, the signer's, is taken");
  refuses(
    t,
    sign([...by(mok), "-keyid"]),
    "names its signer by subject key identifier, not issuer and serial number: not taken",
  );
  refuses(t, sign([...by(mok), ...by(other)]), "has 2 SignerInfos; exactly one is taken");
});

test("pkcs7Signer() reads 5,000 mutated messages without a crash: a fingerprint or one ParseError", (t) => {
  const good = sign(by(mok));
  const next = rng(77);
  for (let i = 0; i < 5000; i++) {
    const b = good.slice(0, next() % 3 === 0 ? next() % good.length : good.length);
    for (let n = 1 + (next() % 4); n > 0; n--) b[next() % b.length] = next() & 255;
    try {
      const s = pkcs7Signer(b);
      if (!/^[0-9a-f]{64}$/.test(s.fingerprint)) t.fail(s.fingerprint);
    } catch (e) {
      if (!(e instanceof ParseError)) t.fail(String(e));
    }
  }
  t.pass();
});
