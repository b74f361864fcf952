import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { InitError, ParseError } from "../lib/errors.js";
import {
  checkVerityGeometry,
  digestBytes,
  hashTreeBlocks,
  parseVeritySuperblock,
  verityParams,
} from "../runtime/verity.js";

import { inTempDir, rng, run } from "./helpers.js";

/** A real veritysetup format of a 1 MiB file: superblock bytes, root hash, and its dump. */
const REAL = inTempDir((dir) => {
  const data = join(dir, "data");
  const hash = join(dir, "hash");
  run("truncate", ["-s", "1M", data]);
  const out = run("veritysetup", [
    "format",
    data,
    hash,
    "--salt=00112233445566778899aabbccddeeff",
    "--uuid=9d5e6f3a-1b2c-4d8e-9f01-23456789abcd",
  ]);
  const rootHash = (out.match(/Root hash:\s+([0-9a-f]+)/) as RegExpMatchArray)[1];
  const b = new Uint8Array(readFileSync(hash));
  return { sb: b.slice(0, 512), hashSize: b.length, rootHash };
});

test("parseVeritySuperblock() reads what veritysetup format wrote", (t) => {
  t.deepEqual(parseVeritySuperblock(REAL.sb), {
    version: 1,
    hashType: 1,
    uuid: "9d5e6f3a-1b2c-4d8e-9f01-23456789abcd",
    algorithm: "sha256",
    dataBlockSize: 4096,
    hashBlockSize: 4096,
    dataBlocks: 256,
    salt: "00112233445566778899aabbccddeeff",
  });
});

test("checkVerityGeometry() accepts the real layout and returns the hash start block", (t) => {
  const sb = parseVeritySuperblock(REAL.sb);
  t.is(hashTreeBlocks(sb), 3);
  t.is(REAL.hashSize, (1 + 3) * 4096, "veritysetup wrote the superblock and three hash blocks");
  t.is(checkVerityGeometry(sb, 1048576, REAL.hashSize, REAL.rootHash, 4096, false), 1);
});

test("checkVerityGeometry() rejects sizes that do not fit and a hash of the wrong length", (t) => {
  const sb = parseVeritySuperblock(REAL.sb);
  const msg = (f: () => unknown) => (t.throws(f, { any: true, instanceOf: ParseError }) as ParseError).message;
  t.is(
    msg(() => checkVerityGeometry(sb, 4096, REAL.hashSize, REAL.rootHash, 4096, false)),
    "verity superblock covers 1048576 bytes of data, but the root partition has 4096",
  );
  t.is(
    msg(() => checkVerityGeometry(sb, 1048576, 8192, REAL.rootHash, 4096, false)),
    "verity hash tree needs 16384 bytes, but the verity partition has 8192",
  );
  t.is(
    msg(() => checkVerityGeometry(sb, 1048576, REAL.hashSize, "ab".repeat(20), 4096, false)),
    "roothash= has 40 hex digits, but sha256 needs 64",
  );
});

test("parseVeritySuperblock() rejects nonsense with one clear message each", (t) => {
  const cases: Array<[(b: Uint8Array) => void, string]> = [
    [(b) => (b[0] = 0), "no verity superblock (bad signature)"],
    [(b) => (b[8] = 2), "verity superblock version 2 is not supported"],
    [(b) => b.set([0x6d, 0x64, 0x35, 0], 32), 'verity hash algorithm "md5" is not supported'],
    [(b) => b.set([0, 0x30, 0, 0], 64), "verity data block size 12288 is invalid"],
    [(b) => b.fill(0, 72, 80), "verity data block count 0 is invalid"],
    [(b) => b.set([0x01, 0x02], 80), "verity salt size 513 exceeds 256"],
    [(b) => (b[12] = 0), "verity hash type 0 is not supported (only 1)"],
    [(b) => b.set([0, 1, 0, 0], 68), "verity hash block size 256 is invalid"],
    [(b) => b.set([0, 0, 2, 0], 64), "verity data block size 131072 is invalid"],
    [(b) => b.set([1, 0, 0, 0, 0x40, 0, 0, 0], 72), "verity data block count 274877906945 is invalid"],
  ];
  for (const [edit, message] of cases) {
    const b = REAL.sb.slice();
    edit(b);
    t.throws(() => parseVeritySuperblock(b), { any: true, instanceOf: ParseError, message }, message);
  }
  t.is(
    (t.throws(() => parseVeritySuperblock(REAL.sb.slice(0, 100)), { any: true }) as InitError).message,
    "verity superblock is truncated (100 bytes)",
  );
});

test("parseVeritySuperblock() takes the limits themselves: blocks of 512 bytes and 64 KiB, 2^38 data blocks, a 256-byte salt", (t) => {
  const b = REAL.sb.slice();
  b.set([0, 2, 0, 0], 64);
  b.set([0, 0, 1, 0], 68);
  b.set([0, 0, 0, 0, 0x40, 0, 0, 0], 72);
  b.set([0, 1], 80);
  const sb = parseVeritySuperblock(b);
  t.is(sb.dataBlockSize, 512);
  t.is(sb.hashBlockSize, 65536);
  t.is(sb.dataBlocks, 274877906944);
  t.is(sb.salt.length, 512);
});

test("verityParams() builds the kernel's verity table line", (t) => {
  const sb = parseVeritySuperblock(REAL.sb);
  t.is(
    verityParams("7:0", "7:1", sb, 1, REAL.rootHash, ["panic_on_corruption", "ignore_zero_blocks"]),
    `1 7:0 7:1 4096 4096 256 1 sha256 ${REAL.rootHash} 00112233445566778899aabbccddeeff 2 panic_on_corruption ignore_zero_blocks`,
  );
  t.is(
    verityParams("7:0", "7:1", { ...sb, salt: "" }, 1, REAL.rootHash, []),
    `1 7:0 7:1 4096 4096 256 1 sha256 ${REAL.rootHash} -`,
  );
});

test("parseVeritySuperblock() on 10,000 mutated superblocks returns a superblock or a ParseError", (t) => {
  const next = rng(5);
  let ok = 0;
  for (let i = 0; i < 10000; i++) {
    const b = REAL.sb.slice();
    const n = 1 + (next() % 6);
    for (let j = 0; j < n; j++) b[next() % 96] = next() & 0xff;
    try {
      const sb = parseVeritySuperblock(b);
      try {
        checkVerityGeometry(sb, 1048576, REAL.hashSize, REAL.rootHash, 4096, false);
      } catch (e) {
        if (!(e instanceof ParseError)) t.fail(String(e));
      }
      ok++;
    } catch (e) {
      if (!(e instanceof ParseError)) t.fail(`mutation ${i}: ${String(e)}`);
    }
  }
  t.true(ok > 0);
});

test("digestBytes() knows sha256, sha512 and sha1, and no inherited name", (t) => {
  t.is(digestBytes("sha256"), 32);
  t.is(digestBytes("sha512"), 64);
  t.is(digestBytes("sha1"), 20);
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "md5", "SHA256", ""])
    t.is(digestBytes(name), undefined, name);
});

test("checkVerityGeometry() refuses blocks larger than a page and digests under 256 bits unless allowed", (t) => {
  const sb = parseVeritySuperblock(REAL.sb);
  const big = { ...sb, dataBlockSize: 8192, dataBlocks: 128 };
  t.throws(() => checkVerityGeometry(big, 1048576, REAL.hashSize, REAL.rootHash, 4096, false), {
    any: true,
    instanceOf: ParseError,
    message: "verity data block size 8192 exceeds the page size 4096, the most dm-verity takes",
  });
  t.is(checkVerityGeometry(big, 1048576, REAL.hashSize, REAL.rootHash, 16384, false), 1, "a 16 KiB page takes it");
  t.throws(() => checkVerityGeometry({ ...sb, hashBlockSize: 8192 }, 1048576, 65536, REAL.rootHash, 4096, false), {
    any: true,
    message: "verity hash block size 8192 exceeds the page size 4096, the most dm-verity takes",
  });
  const sha1 = { ...sb, algorithm: "sha1" };
  const hash40 = "ab".repeat(20);
  t.throws(() => checkVerityGeometry(sha1, 1048576, REAL.hashSize, hash40, 4096, false), {
    any: true,
    message:
      "verity hash sha1 has 160-bit digests; storage-init takes 256 bits or more unless storage_init.allow_weak_hash is given",
  });
  t.is(checkVerityGeometry(sha1, 1048576, REAL.hashSize, hash40, 4096, true), 1);
});
