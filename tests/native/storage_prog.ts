/**
 * The storage chain's pure modules on fixed and mutated inputs: GPT, module table and globs,
 * verity superblock, dm and loop encoders, the EFI variable. Node and native output must match.
 */
import { crc32, crc32Js } from "../../lib/crc32.js";
import { PartitionType } from "../../lib/facts.js";
import { toHex } from "../../lib/hex.js";
import { selectDdiPartitions } from "../../runtime/ddi.js";
import { ARCH } from "../../runtime/build_facts.js";
import { parseLoaderDevicePartUuid } from "../../runtime/esp.js";
import { parseGpt } from "../../runtime/gpt.js";
import { encodeLoopConfig } from "../../runtime/loop.js";
import { globMatch, loadOrder, matchModalias, parseModuleTable } from "../../runtime/module_table.js";
import { encodeDmIoctl } from "../../runtime/devmapper.js";
import { checkVerityGeometry, parseVeritySuperblock, verityParams } from "../../runtime/verity.js";
import { errorText } from "../../lib/errors.js";
import type { Kernel } from "../../syscalls/kernel.js";
import { syntheticDdi, TABLE } from "../fake_world.js";
import { rng } from "../rng.js";

function errMessage(e: unknown): string {
  return "error: " + errorText(e);
}

function digest(s: string, d: number): number {
  for (let j = 0; j < s.length; j++) d = (Math.imul(d, 31) + s.charCodeAt(j)) >>> 0;
  return d;
}

export function run(_k: Kernel, _scratch: string): string[] {
  const out: string[] = [];
  const hash = "0123456789abcdef".repeat(4);
  const ddi = syntheticDdi(hash);
  const read = (o: number, n: number) => ddi.slice(o, Math.min(ddi.length, o + n));
  const gpt = parseGpt(read, ddi.length);
  out.push(
    "gpt " +
      gpt.sectorSize +
      " " +
      gpt.usedHeader +
      " " +
      gpt.partitions
        .map((p) => p.number + ":" + p.typeGuid + ":" + p.partGuid + ":" + p.offset + "+" + p.size + ":" + p.name)
        .join(" "),
  );
  const sel = selectDdiPartitions(gpt, ARCH, hash, false);
  out.push(
    "ddi root " + sel.root.partGuid + " verity " + (sel.verity === undefined ? "none" : sel.verity.partition.partGuid),
  );
  try {
    selectDdiPartitions(gpt, ARCH, "ff" + hash.slice(2), false);
  } catch (e) {
    out.push(errMessage(e));
  }
  out.push("crc32 " + crc32(ddi, 512, 604).toString(16));
  // The native binary's C CRC must agree with the TypeScript reference on any input.
  let agree = 0;
  const gen = rng(77);
  for (let i = 0; i < 200; i++) {
    const n = gen() % 700;
    const b = new Uint8Array(n);
    for (let j = 0; j < n; j++) b[j] = gen() & 0xff;
    const s = n === 0 ? 0 : gen() % n;
    if (crc32(b, s, n) === crc32Js(b, s, n)) agree++;
  }
  out.push("crc32 implementations agree on " + agree + " of 200 random buffers");
  // Mutated tables: parse result or error message, folded into a digest.
  const next = rng(2024);
  let d = 0;
  for (let i = 0; i < 1500; i++) {
    const img = ddi.slice(0, 40960);
    const n = 1 + (next() % 6);
    for (let j = 0; j < n; j++) img[512 + (next() % 2048)] = next() & 0xff;
    let r = "";
    try {
      const g = parseGpt((o, l) => img.slice(o, Math.min(img.length, o + l)), img.length);
      r = g.usedHeader + g.partitions.length;
    } catch (e) {
      r = errMessage(e);
    }
    d = digest(r, d);
  }
  out.push("mutated gpt digest " + d);
  const table = parseModuleTable(TABLE);
  out.push("match " + matchModalias("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", table).join(","));
  out.push(
    "order " +
      loadOrder("dm_verity", table, new Set<string>())
        .map((m) => m.name)
        .join(","),
  );
  const globs: Array<[string, string]> = [
    ["acpi*:PNP0A0[38]:*", "acpi:PNP0A08:"],
    ["x[!a-c]y", "xby"],
    ["a\\*c", "a*c"],
    ["a[]]b", "a]b"],
    ["a[b", "a[b"],
    ["*a*a*b", "aaaaaaaaaaaaaaaaaaaac"],
  ];
  out.push("globs " + globs.map((g) => (globMatch(g[0], g[1]) ? "1" : "0")).join(""));
  try {
    parseModuleTable("storage-init-modules 2 6.1.0\nm a ../x -\n");
  } catch (e) {
    out.push(errMessage(e));
  }
  const sb = parseVeritySuperblock(ddi.subarray(2 * 1048576, 2 * 1048576 + 512));
  out.push("verity " + sb.algorithm + " " + sb.dataBlocks + " " + sb.salt + " " + sb.uuid);
  const start = checkVerityGeometry(sb, 1048576, 1048576, hash, 4096, false);
  out.push("params " + verityParams("7:0", "7:1", sb, start, hash, ["panic-on-corruption"]));
  out.push(
    "dm " +
      toHex(
        encodeDmIoctl({
          name: "root",
          uuid: "U",
          flags: 1,
          targets: [{ start: 0, length: 128, type: "verity", params: "1 2 3" }],
          reserve: 0,
        }).subarray(0, 64),
      ),
  );
  out.push(
    "loop " +
      toHex(
        encodeLoopConfig(5, { offset: 1048576, size: 2097152, flags: 21, blockSize: 0 }, "/esp/x.raw").subarray(0, 80),
      ),
  );
  const efi = new Uint8Array(4 + 74);
  const g = "6B1E7D2A-3C4F-4A5B-8C6D-7E8F9A0B1C2D";
  for (let i = 0; i < g.length; i++) efi[4 + 2 * i] = g.charCodeAt(i);
  out.push("efivar " + parseLoaderDevicePartUuid(efi) + " " + parseLoaderDevicePartUuid(efi.subarray(0, 20)));
  out.push("esp type " + PartitionType.ESP);
  return out;
}
