/**
 * CRC-32 (IEEE 802.3, reflected, as GPT uses it). Written here rather than taken from npm:
 * everything the init runs must compile under porffor. The native binary swaps in the shim's C
 * loop (installNative in syscalls/linux.ts), far faster than this loop compiled by porffor over
 * a GPT's 16 KiB of entries; tests/native checks that both give the same values.
 */
let table_: number[] | undefined;

function table(): number[] {
  if (table_ !== undefined) return table_;
  const t: number[] = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t.push(c >>> 0);
  }
  table_ = t;
  return t;
}

/** The reference implementation. */
export function crc32Js(b: Uint8Array, start: number, end: number): number {
  const t = table();
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export type Crc32Impl = (b: Uint8Array, start: number, end: number) => number;

const impl: { fn: Crc32Impl } = { fn: crc32Js };

/** Replaces the implementation (the native binary installs the shim's). */
export function setCrc32Impl(fn: Crc32Impl): void {
  impl.fn = fn;
}

export function crc32(b: Uint8Array, start: number = 0, end: number = b.length): number {
  if (start < 0 || end > b.length || start > end)
    throw new Error("crc32: range " + start + ".." + end + " outside " + b.length + " bytes");
  return impl.fn(b, start, end);
}
