/**
 * The whole boot() over FakeKernel, compiled natively: the log lines, mounts, module loads and
 * the exec must be what Node produces. Cases: success, no roothash=, wrong roothash=, missing
 * DDI, disk never appearing, damaged primary GPT.
 */
import type { Kernel } from "../../syscalls/kernel.js";
import { logLines, syntheticDdi, world } from "../fake_world.js";

export function run(_k: Kernel, _scratch: string): string[] {
  const out: string[] = [];
  const hash = "0123456789abcdef".repeat(4);
  const ddi = syntheticDdi(hash);
  const cases: Array<[string, string, boolean, boolean, boolean]> = [
    ["ok", "roothash=" + hash, false, false, false],
    ["no roothash", "storage_init.failure_delay=0", false, false, false],
    ["wrong roothash", "roothash=" + "ab".repeat(32) + " storage_init.failure_delay=0", false, false, false],
    ["no ddi", "roothash=" + hash + " storage_init.failure_delay=0", true, false, false],
    ["no disk", "roothash=" + hash + " storage_init.timeout=1 storage_init.failure_delay=0", false, true, false],
    ["backup gpt", "roothash=" + hash, false, false, true],
  ];
  for (const [name, cmdline, noDdi, noDisk, primaryBroken] of cases) {
    const w = world(cmdline, {
      ddi,
      espFiles: noDdi ? new Map<string, Uint8Array>() : undefined,
      noDisk,
      primaryBroken,
    });
    const stop = w.run();
    out.push("== " + name + ": " + stop.reason + " " + stop.detail);
    for (const l of logLines(w.k)) out.push(l.replace(/\d+\.\d+ ms/g, "N ms"));
    out.push("mounts " + w.k.mountLog.map((m) => m.source + ">" + m.target + ":" + m.fstype).join(" "));
    out.push("modules " + w.k.modulesLoaded.join(","));
    out.push("dm " + w.k.dmTables.join(" | "));
    out.push("exec " + w.k.execs.map((e) => e.argv.join(" ")).join(" | "));
  }
  return out;
}
