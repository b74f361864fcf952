// The initramfs: a newc cpio archive, written here so that device nodes need no root, and read
// back (tests make variants of the real one). Owners are root and times zero: the archive is
// reproducible.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { gzipSync } from "node:zlib";

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;
const HEADER = 110;
const TRAILER = "TRAILER!!!";

/**
 * @typedef {{ path: string, type: "dir" | "file" | "chr", mode?: number, data?: Uint8Array | string, major?: number, minor?: number }} CpioEntry
 */

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

function cpioHeader(ino, mode, size, nameLen, rmaj = 0, rmin = 0) {
  const f = (v) => v.toString(16).padStart(8, "0");
  return "070701" + [ino, mode, 0, 0, 1, 0, size, 0, 0, rmaj, rmin, nameLen, 0].map(f).join("");
}

/** A newc cpio archive of `entries`, in their order. @param {CpioEntry[]} entries */
export function cpioArchive(entries) {
  const parts = [];
  let ino = 1;
  const add = (name, mode, data, rmaj, rmin) => {
    const nameBuf = Buffer.from(name + "\0");
    const hdr = Buffer.from(cpioHeader(ino++, mode, data.length, nameBuf.length, rmaj, rmin));
    parts.push(hdr, nameBuf, Buffer.alloc(pad4(hdr.length + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const perm = e.mode ?? (e.type === "dir" ? 0o755 : 0o644);
    if (e.type === "dir") add(e.path, S_IFDIR | perm, Buffer.alloc(0));
    else if (e.type === "chr") add(e.path, S_IFCHR | perm, Buffer.alloc(0), e.major, e.minor);
    else add(e.path, S_IFREG | perm, Buffer.from(e.data ?? ""));
  }
  add(TRAILER, 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** The entries of a newc archive (what cpioArchive wrote), without the trailer. @returns {CpioEntry[]} */
export function readCpio(b) {
  /** @type {CpioEntry[]} */
  const out = [];
  let o = 0;
  while (o + HEADER <= b.length) {
    const h = b.subarray(o, o + HEADER);
    if (h.toString("latin1", 0, 6) !== "070701") throw new Error(`cpio: bad magic at ${o}`);
    const field = (i) => parseInt(h.toString("latin1", 6 + i * 8, 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameLen = field(11);
    const path = b.toString("latin1", o + HEADER, o + HEADER + nameLen - 1);
    const dataStart = o + HEADER + nameLen + pad4(HEADER + nameLen);
    o = dataStart + size + pad4(size);
    if (path === TRAILER) break;
    /** @type {CpioEntry["type"]} */
    const type = (mode & S_IFMT) === S_IFDIR ? "dir" : (mode & S_IFMT) === S_IFCHR ? "chr" : "file";
    out.push({
      path,
      type,
      mode: mode & 0o7777,
      data: b.subarray(dataStart, dataStart + size),
      major: field(9),
      minor: field(10),
    });
  }
  return out;
}

/** The directories an entry list needs, parents first. */
function withParents(entries) {
  const dirs = new Set();
  for (const e of entries) {
    const parts = e.path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    if (e.type === "dir") dirs.add(e.path);
  }
  const dirEntries = [...dirs].sort().map((path) => ({ path, type: "dir" }));
  return [...dirEntries, ...entries.filter((e) => e.type !== "dir")];
}

/**
 * Writes a gzip-compressed initramfs holding /init, the mount points, /dev/console, /dev/kmsg and
 * `extra` entries (modules and their table). Returns { path, size, rawSize, entries }.
 */
export function writeInitramfs(initBinary, out, extra = []) {
  const entries = withParents([
    { path: "dev", type: "dir" },
    { path: "proc", type: "dir" },
    { path: "sys", type: "dir" },
    { path: "run", type: "dir" },
    { path: "sysroot", type: "dir" },
    { path: "dev/console", type: "chr", mode: 0o600, major: 5, minor: 1 },
    // Before devtmpfs is mounted, /dev/kmsg is this node: a fatal line at start-up is a kernel record too.
    { path: "dev/kmsg", type: "chr", mode: 0o600, major: 1, minor: 11 },
    { path: "init", type: "file", mode: 0o755, data: readFileSync(initBinary) },
    ...extra,
  ]);
  const cpio = cpioArchive(entries);
  const gz = gzipSync(cpio, { level: 9 });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, gz);
  return { path: out, size: gz.length, rawSize: cpio.length, entries: entries.length };
}
