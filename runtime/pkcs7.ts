/**
 * Who signed a root hash: the signer of a DER PKCS#7 SignedData (RFC 2315) as the kernel would
 * find it, read before the kernel is asked to trust it. The message must hold exactly one
 * SignerInfo and exactly one certificate, and the SignerInfo must name that certificate
 * (issuerAndSerialNumber): otherwise the kernel would look the signer up in its keyrings by
 * the SignerInfo's name, and a message could carry a pinned certificate while another trusted
 * key (any MOK) made the signature. The fingerprint is the SHA-256 of the certificate's DER,
 * computed here: the JSON's certificateFingerprint vouches for nothing. Pure; hostile input.
 *
 * A DER reader of five fields written here rather than an ASN.1 library: such libraries build
 * object trees for every type and do not compile under porffor; this walks lengths it checks.
 */
import { ParseError } from "../lib/errors.js";
import { sha256Hex } from "../lib/sha256.js";

/** The signer of a PKCS#7: the SHA-256 of its certificate's DER, lower-case hex. */
export interface Pkcs7Signer {
  fingerprint: string;
}

/** A DER element: its tag, where its contents start and end. */
interface Tlv {
  tag: number;
  start: number;
  end: number;
  /** Where the element itself starts (its tag byte). */
  at: number;
}

function fail(what: string): never {
  throw new ParseError("the signature's PKCS#7 " + what);
}

/** The element at `at`, which must end by `limit`: tag, definite length (at most 4 bytes), contents. */
function tlv(b: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) fail("ends inside an element at byte " + at);
  const tag = b[at];
  if ((tag & 0x1f) === 0x1f) fail("has a multi-byte tag at byte " + at);
  let len = b[at + 1];
  let start = at + 2;
  if (len === 0x80) fail("has an indefinite length at byte " + at + " (DER has none)");
  if (len > 0x80) {
    const n = len - 0x80;
    if (n > 4) fail("has a length of " + n + " bytes at byte " + at);
    if (start + n > limit) fail("ends inside a length at byte " + at);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  if (start + len > limit) fail("has an element at byte " + at + " longer than what holds it");
  return { tag, start, end: start + len, at };
}

/** The element at `at` within `limit`, which must have tag `tag`. */
function expectTag(b: Uint8Array, at: number, limit: number, tag: number, what: string): Tlv {
  const e = tlv(b, at, limit);
  if (e.tag !== tag) fail(what + " is not where it must be (tag 0x" + e.tag.toString(16) + " at byte " + at + ")");
  return e;
}

/** The elements directly inside `outer`. */
function children(b: Uint8Array, outer: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let at = outer.start;
  while (at < outer.end) {
    const e = tlv(b, at, outer.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

/** True when b[a.at, a.end) and b[c.at, c.end) are the same bytes. */
function sameBytes(b: Uint8Array, a: Tlv, c: Tlv): boolean {
  if (a.end - a.at !== c.end - c.at) return false;
  for (let i = 0; i < a.end - a.at; i++) if (b[a.at + i] !== b[c.at + i]) return false;
  return true;
}

/** DER of OID 1.2.840.113549.1.7.2 (signedData), its contents. */
const SIGNED_DATA_OID = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OID = 0x06;
/** [0] EXPLICIT, constructed: the content of ContentInfo, a certificate's version. */
const CONTEXT0 = 0xa0;

/**
 * The signer of the DER PKCS#7 `der`: exactly one certificate and one SignerInfo, which names
 * that certificate by issuer and serial number; throws ParseError naming what is wrong.
 */
export function pkcs7Signer(der: Uint8Array): Pkcs7Signer {
  const content = expectTag(der, 0, der.length, SEQUENCE, "ContentInfo");
  if (content.end !== der.length) fail("has bytes after its ContentInfo");
  const ci = children(der, content);
  if (ci.length !== 2 || ci[0].tag !== OID || ci[1].tag !== CONTEXT0) fail("is not a ContentInfo");
  const oid = ci[0];
  let isSigned = oid.end - oid.start === SIGNED_DATA_OID.length;
  for (let i = 0; isSigned && i < SIGNED_DATA_OID.length; i++)
    if (der[oid.start + i] !== SIGNED_DATA_OID[i]) isSigned = false;
  if (!isSigned) fail("is not SignedData");
  const sd = expectTag(der, ci[1].start, ci[1].end, SEQUENCE, "SignedData");
  // version, digestAlgorithms, contentInfo, [0] certificates, [1] crls, signerInfos
  const parts = children(der, sd);
  if (parts.length < 4 || parts[0].tag !== INTEGER || parts[1].tag !== SET || parts[2].tag !== SEQUENCE)
    fail("SignedData is malformed");
  const certs: Tlv[] = [];
  let signerInfos: Tlv | undefined;
  for (let i = 3; i < parts.length; i++) {
    const p = parts[i];
    if (p.tag === CONTEXT0 && certs.length === 0 && signerInfos === undefined) {
      const list = children(der, p);
      for (const c of list) certs.push(c);
    } else if (p.tag === 0xa1 && signerInfos === undefined) {
      // crls: not used by the kernel, allowed
    } else if (p.tag === SET && i === parts.length - 1) signerInfos = p;
    else fail("SignedData has an unexpected element (tag 0x" + p.tag.toString(16) + ")");
  }
  if (signerInfos === undefined) fail("has no signerInfos");
  const signers = children(der, signerInfos);
  if (signers.length !== 1) fail("has " + signers.length + " SignerInfos; exactly one is taken");
  if (certs.length !== 1) fail("carries " + certs.length + " certificates; exactly one, the signer's, is taken");
  const cert = certs[0];
  if (cert.tag !== SEQUENCE) fail("has a certificate that is not a SEQUENCE");
  // Certificate: tbsCertificate { [0] version?, serialNumber, signature, issuer, ... }
  const tbs = expectTag(der, cert.start, cert.end, SEQUENCE, "the certificate's tbsCertificate");
  const tf = children(der, tbs);
  const first = tf.length > 0 && tf[0].tag === CONTEXT0 ? 1 : 0;
  if (tf.length < first + 4 || tf[first].tag !== INTEGER || tf[first + 2].tag !== SEQUENCE)
    fail("has a malformed certificate");
  const certSerial = tf[first];
  const certIssuer = tf[first + 2];
  // SignerInfo: version, issuerAndSerialNumber { issuer, serialNumber } | [0] subjectKeyIdentifier, ...
  const si = children(der, signers[0]);
  if (si.length < 5 || si[0].tag !== INTEGER) fail("has a malformed SignerInfo");
  if (si[1].tag !== SEQUENCE)
    fail("names its signer by subject key identifier, not issuer and serial number: not taken");
  const ias = children(der, si[1]);
  if (ias.length !== 2 || ias[0].tag !== SEQUENCE || ias[1].tag !== INTEGER)
    fail("has a malformed issuerAndSerialNumber");
  if (!sameBytes(der, ias[0], certIssuer) || !sameBytes(der, ias[1], certSerial))
    fail("is signed by a key other than the certificate it carries");
  return { fingerprint: sha256Hex(der, cert.at, cert.end) };
}

/**
 * Why the signature `pkcs7` is not taken before the kernel sees it, or "": its signer is not
 * one certificate the message carries (pkcs7Signer()), the JSON's `claimed` fingerprint ("" for
 * none) is not that certificate's, or `pinned` (fingerprints; empty for no pin) does not name
 * it. `signer.fingerprint` is set to the computed fingerprint when there is one.
 */
export function signerRefusal(pkcs7: Uint8Array, claimed: string, pinned: string[], signer: Pkcs7Signer): string {
  let s: Pkcs7Signer;
  try {
    s = pkcs7Signer(pkcs7);
  } catch (e) {
    return (e as ParseError).message;
  }
  signer.fingerprint = s.fingerprint;
  if (claimed !== "" && claimed !== s.fingerprint)
    return "its certificateFingerprint " + claimed + " is not the certificate that signed, SHA-256 " + s.fingerprint;
  if (pinned.length > 0 && pinned.indexOf(s.fingerprint) < 0)
    return (
      "it was made by certificate SHA-256 " +
      s.fingerprint +
      ", which storage_init.certificate_fingerprint= does not name"
    );
  return "";
}
