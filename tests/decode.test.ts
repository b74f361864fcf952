import test from "ava";
import { parseDirents, parseStatx } from "../syscalls/decode.js";
import type { DirEntry } from "../syscalls/kernel.js";
import { rng } from "./helpers.js";

function dirent(name: string, type: number): Uint8Array {
  const reclen = (19 + name.length + 1 + 7) & ~7;
  const b = new Uint8Array(reclen);
  b[16] = reclen & 255;
  b[17] = reclen >> 8;
  b[18] = type;
  for (let i = 0; i < name.length; i++) b[19 + i] = name.charCodeAt(i);
  return b;
}

test("parseDirents() reads linux_dirent64 records and skips . and ..", (t) => {
  const parts = [dirent(".", 4), dirent("..", 4), dirent("vda", 6), dirent("loop-control", 2)];
  const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  const out: DirEntry[] = [];
  parseDirents(buf, buf.length, out);
  t.deepEqual(out, [
    { name: "vda", type: 6 },
    { name: "loop-control", type: 2 },
  ]);
});

test("parseDirents() on 10,000 mutated buffers returns entries or an Error, never loops", (t) => {
  const base = new Uint8Array(96);
  base.set(dirent("sda", 6), 0);
  base.set(dirent("sda1", 6), 24);
  base.set(dirent("nvme0n1", 6), 48);
  const next = rng(11);
  for (let i = 0; i < 10000; i++) {
    const b = base.slice();
    for (let j = 0; j < 1 + (next() % 4); j++) b[next() % b.length] = next() & 0xff;
    const out: DirEntry[] = [];
    try {
      parseDirents(b, next() % (b.length + 1), out);
      t.true(out.length <= 4);
    } catch (e) {
      t.true(e instanceof Error);
    }
  }
});

test("parseStatx() reads mode, size and device numbers", (t) => {
  const b = new Uint8Array(256);
  b[28] = 0x80;
  b[29] = 0x61; // 0o060600: block device
  b[40] = 0x00;
  b[41] = 0x10; // size 4096
  b[128] = 7;
  b[132] = 3;
  b[136] = 0;
  b[140] = 5;
  t.deepEqual(parseStatx(b), { mode: 0o060600, size: 4096, rdevMajor: 7, rdevMinor: 3, devMajor: 0, devMinor: 5 });
});
