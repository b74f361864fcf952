/**
 * CRC-32 (IEEE 802.3, reflected, as GPT uses it). Fifteen lines kept here rather than an npm
 * package: every dependency of the runtime must also compile under porffor.
 */
let TABLE: number[] | undefined;

function table(): number[] {
  if (TABLE !== undefined) return TABLE;
  const t: number[] = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t.push(c >>> 0);
  }
  TABLE = t;
  return t;
}

export function crc32(b: Uint8Array, start: number = 0, end: number = b.length): number {
  const t = table();
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
