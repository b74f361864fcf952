/** Reads and rewrites newc cpio archives (what build.mjs writes), for initramfs variants in tests. */

export interface CpioEntry {
  name: string;
  header: Buffer;
  data: Buffer;
}

const HEADER = 110;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

export function readCpio(b: Buffer): CpioEntry[] {
  const out: CpioEntry[] = [];
  let o = 0;
  while (o + HEADER <= b.length) {
    const h = b.subarray(o, o + HEADER);
    if (h.toString("latin1", 0, 6) !== "070701") throw new Error(`cpio: bad magic at ${o}`);
    const field = (i: number) => parseInt(h.toString("latin1", 6 + i * 8, 14 + i * 8), 16);
    const size = field(6);
    const nameLen = field(11);
    const name = b.toString("latin1", o + HEADER, o + HEADER + nameLen - 1);
    const dataStart = o + HEADER + nameLen + pad4(HEADER + nameLen);
    out.push({ name, header: Buffer.from(h), data: b.subarray(dataStart, dataStart + size) });
    o = dataStart + size + pad4(size);
    if (name === "TRAILER!!!") break;
  }
  return out;
}

export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const nameBuf = Buffer.from(e.name + "\0", "latin1");
    parts.push(e.header, nameBuf, Buffer.alloc(pad4(HEADER + nameBuf.length)), e.data, Buffer.alloc(pad4(e.data.length)));
  }
  return Buffer.concat(parts);
}

/** The archive without the entry named `path`. */
export function cpioWithout(cpio: Buffer, path: string): Buffer {
  const entries = readCpio(cpio);
  if (!entries.some((e) => e.name === path)) throw new Error(`cpio: no entry ${path}`);
  return writeCpio(entries.filter((e) => e.name !== path));
}
