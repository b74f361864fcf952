/** Shared test helpers: real-tool fixtures, a deterministic random source, a GPT writer. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "../runtime/crc32.js";
import { guidToBytes } from "../runtime/gpt.js";
import { putU32le, putU64le } from "../syscalls/bytes.js";

export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], cwd });
}

/** Runs fn in a fresh temporary directory, removed afterwards. */
export function inTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "si-test-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A GPT disk image written by sgdisk (512-byte sectors). parts: [type, uuid, name, firstLba, lastLba]. */
export function sgdiskImage(sizeMiB: number, parts: Array<[string, string, string, number, number]>): Uint8Array {
  return inTempDir((dir) => {
    const f = join(dir, "disk.img");
    run("truncate", ["-s", `${sizeMiB}M`, f]);
    const args = ["--clear"];
    parts.forEach(([type, uuid, name, first, last], i) => {
      args.push(`--new=${i + 1}:${first}:${last}`, `--typecode=${i + 1}:${type}`, `--partition-guid=${i + 1}:${uuid}`, `--change-name=${i + 1}:${name}`);
    });
    run("sgdisk", [...args, "--disk-guid=11111111-2222-3333-4444-555555555555", f]);
    return new Uint8Array(readFileSync(f));
  });
}

/** A deterministic generator (LCG), so that a failing random input can be reproduced. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

export function reader(b: Uint8Array): (offset: number, length: number) => Uint8Array {
  return (offset, length) => b.slice(offset, Math.min(b.length, offset + length));
}

export interface GptPart {
  type: string;
  uuid: string;
  first: number;
  last: number;
  name: string;
  attrsHigh?: number;
}

/**
 * A GPT with primary and backup headers for any sector size. The real tools here write only
 * 512-byte sectors to image files; this writer is checked against sgdisk in gpt.test.ts and
 * then used for 4096-byte sectors.
 */
export function writeGpt(sizeBytes: number, ss: number, parts: GptPart[]): Uint8Array {
  const disk = new Uint8Array(sizeBytes);
  const sectors = sizeBytes / ss;
  const count = 128;
  const entries = new Uint8Array(count * 128);
  parts.forEach((p, i) => {
    const o = i * 128;
    entries.set(guidToBytes(p.type) as Uint8Array, o);
    entries.set(guidToBytes(p.uuid) as Uint8Array, o + 16);
    putU64le(entries, o + 32, p.first);
    putU64le(entries, o + 40, p.last);
    putU32le(entries, o + 52, p.attrsHigh ?? 0);
    for (let j = 0; j < p.name.length; j++) entries[o + 56 + 2 * j] = p.name.charCodeAt(j);
  });
  const entrySectors = Math.ceil((count * 128) / ss);
  const header = (my: number, alt: number, entriesLba: number) => {
    const h = new Uint8Array(92);
    h.set([0x45, 0x46, 0x49, 0x20, 0x50, 0x41, 0x52, 0x54], 0);
    putU32le(h, 8, 0x00010000);
    putU32le(h, 12, 92);
    putU64le(h, 24, my);
    putU64le(h, 32, alt);
    putU64le(h, 40, 2 + entrySectors);
    putU64le(h, 48, sectors - 2 - entrySectors);
    h.set(guidToBytes("11111111-2222-3333-4444-555555555555") as Uint8Array, 56);
    putU64le(h, 72, entriesLba);
    putU32le(h, 80, count);
    putU32le(h, 84, 128);
    putU32le(h, 88, crc32(entries));
    putU32le(h, 16, crc32(h));
    return h;
  };
  disk.set(header(1, sectors - 1, 2), ss);
  disk.set(entries, 2 * ss);
  disk.set(header(sectors - 1, 1, sectors - 1 - entrySectors), (sectors - 1) * ss);
  disk.set(entries, (sectors - 1 - entrySectors) * ss);
  return disk;
}

/** What `fn` threw (our error classes are not Error subclasses, see kernel.ts), or fails the test. */
export function thrown(t: { fail: (m: string) => void }, fn: () => unknown): { message: string } {
  try {
    fn();
  } catch (e) {
    return e as { message: string };
  }
  t.fail("expected an exception");
  return { message: "" };
}
