import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { putU32le } from "../lib/bytes.js";
import { ParseError } from "../lib/errors.js";
import {
  EROFS_SUPERBLOCK_OFFSET,
  EROFS_SUPERBLOCK_SIZE,
  erofsFitRefusal,
  parseErofsSuperblock,
} from "../runtime/erofs.js";
import { inTempDir, run } from "./helpers.js";

test("parseErofsSuperblock() reads the block size and count mkfs.erofs wrote", (t) => {
  const { sb, size } = inTempDir((dir) => {
    run("mkdir", ["-p", join(dir, "tree/sbin")]);
    run("sh", ["-c", `head -c 20000 /dev/urandom > ${join(dir, "tree/sbin/init")}`]);
    run("mkfs.erofs", ["-T0", "--all-root", join(dir, "root.erofs"), join(dir, "tree")]);
    const b = new Uint8Array(readFileSync(join(dir, "root.erofs")));
    return { sb: b.subarray(EROFS_SUPERBLOCK_OFFSET, EROFS_SUPERBLOCK_OFFSET + EROFS_SUPERBLOCK_SIZE), size: b.length };
  });
  const fs = parseErofsSuperblock(sb);
  t.is(fs.blockSize, 4096);
  t.is(fs.blocks * fs.blockSize, size, "the image is exactly the blocks the superblock counts");
});

test("parseErofsSuperblock() names what is not an erofs superblock", (t) => {
  const b = new Uint8Array(EROFS_SUPERBLOCK_SIZE);
  t.throws(() => parseErofsSuperblock(b), {
    any: true,
    instanceOf: ParseError,
    message: "the root is not erofs (no erofs superblock)",
  });
  putU32le(b, 0, 0xe0f5e1e2);
  b[12] = 31;
  t.throws(() => parseErofsSuperblock(b), { any: true, message: "the erofs block size 2^31 is invalid" });
  t.throws(() => parseErofsSuperblock(b.subarray(0, 40)), {
    any: true,
    message: "the root has no erofs superblock (it is too short)",
  });
});

test("erofsFitRefusal(): a file system larger than what dm-verity verifies is refused, naming both sizes", (t) => {
  t.is(erofsFitRefusal({ blockSize: 4096, blocks: 12 }, 49152), "");
  t.is(erofsFitRefusal({ blockSize: 4096, blocks: 11 }, 49152), "");
  t.is(
    erofsFitRefusal({ blockSize: 4096, blocks: 13 }, 49152),
    "the erofs file system has 53248 bytes, but dm-verity verifies only 49152 of them",
  );
});
