// What TCG had to translate while an init ran: the deterministic part of an init's cost under
// QEMU without KVM. TCG translates each guest basic block the first time it runs (a few tens
// of microseconds each), so code that runs once, as an init's does, costs its translation more
// than its execution. QEMU's `-d in_asm` log lists every translated block in order; the init's
// window runs from its ELF entry point to the root init's.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** QEMU arguments that log every translated block to `logFile`. */
export const translationLogArgs = (logFile) => ["-d", "in_asm", "-D", logFile];

/** The start address of each translated block, in translation order. */
export function translatedBlocks(logFile) {
  const out = [];
  let header = false;
  for (const line of readFileSync(logFile, "latin1").split("\n")) {
    if (line.startsWith("IN:")) {
      header = true;
      continue;
    }
    if (!header) continue;
    const m = /^0x([0-9a-f]+):/.exec(line);
    if (m) {
      out.push(BigInt("0x" + m[1]));
      header = false;
    }
  }
  return out;
}

const KERNEL_SPACE = 0xffff800000000000n;

/** Text symbols of an unstripped ELF: [{ start, end, name }] sorted by start. */
function textSymbols(elf) {
  const syms = [];
  for (const line of execFileSync("nm", ["-S", "--defined-only", elf], { encoding: "utf8", maxBuffer: 64 << 20 }).split(
    "\n",
  )) {
    const f = line.split(" ");
    if (f.length === 4 && "tTwW".includes(f[2]))
      syms.push({ start: BigInt("0x" + f[0]), end: BigInt("0x" + f[0]) + BigInt("0x" + f[1]), name: f[3] });
  }
  return syms.sort((a, b) => (a.start < b.start ? -1 : 1));
}

/**
 * Blocks translated between the init's entry and the root init's entry: { user, kernel } counts
 * and, given the init's unstripped binary, the user blocks per function, most first.
 */
export function initWindow(blocks, initEntry, rootEntry, debugElf) {
  const start = blocks.indexOf(BigInt(initEntry));
  if (start < 0) throw new Error(`no translated block at the init's entry 0x${initEntry.toString(16)}`);
  let end = blocks.indexOf(BigInt(rootEntry), start + 1);
  if (end < 0) end = blocks.length;
  const user = [];
  let kernel = 0;
  for (const a of blocks.slice(start, end)) {
    if (a >= KERNEL_SPACE) kernel++;
    else user.push(a);
  }
  const byFunction = new Map();
  if (debugElf) {
    const syms = textSymbols(debugElf);
    for (const a of user) {
      let lo = 0;
      let hi = syms.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (syms[mid].start <= a) lo = mid;
        else hi = mid - 1;
      }
      const s = syms[lo];
      const name = s && s.start <= a && a < s.end ? s.name.replace(/\.(isra|constprop|part|lto_priv)\.\d+/g, "") : "?";
      byFunction.set(name, (byFunction.get(name) ?? 0) + 1);
    }
  }
  return { user: user.length, kernel, byFunction: [...byFunction].sort((a, b) => b[1] - a[1]) };
}
