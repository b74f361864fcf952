/**
 * The whole boot() over FakeKernel, compiled natively: the log lines, mounts, module loads and
 * the exec must be what Node produces. Cases: success, no roothash=, wrong roothash=, missing
 * DDI, disk never appearing, damaged primary GPT; signed roots: accepted, rejected, and a vpick
 * directory whose newest DDI's signature is rejected; a root pinned by roothash= whose signature
 * the kernel refuses, booted without it, and refused where signatures are required; a DDI in
 * memory (the initramfs's /ddi): booted without a disk, refused before the ESP's, and after an
 * ESP that never appears.
 */
import type { Kernel } from "../../syscalls/kernel.js";
import { FAKE_PIN, logLines, signatureJson, syntheticDdi, world } from "../fake_world.js";

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
  const v1 = "1111aaaa".repeat(8);
  const v2 = "2222bbbb".repeat(8);
  const signed = "storage_init.root_policy=signed " + FAKE_PIN + " storage_init.failure_delay=0";
  const files = new Map<string, Map<string, Uint8Array>>([
    ["signed", new Map([["/EFI/storage-init/root.raw", syntheticDdi(v1, signatureJson(v1, "signed"))]])],
    ["rejected", new Map([["/EFI/storage-init/root.raw", syntheticDdi(v1, signatureJson(v1, "corrupted"))]])],
    ["pinned", new Map([["/EFI/storage-init/root.raw", syntheticDdi(v1, signatureJson(v1, "untrusted"))]])],
    ["pinned, required", new Map([["/EFI/storage-init/root.raw", syntheticDdi(v1, signatureJson(v1, "untrusted"))]])],
    [
      "a/b",
      new Map([
        ["/EFI/storage-init/root.v/root_1.9.raw", syntheticDdi(v1, signatureJson(v1, "signed"))],
        ["/EFI/storage-init/root.v/root_1.10.raw", syntheticDdi(v2, signatureJson(v2, "untrusted"))],
        ["/EFI/storage-init/root.v/root_2_arm64.raw", syntheticDdi(v2, signatureJson(v2, "signed"))],
      ]),
    ],
  ]);
  cases.push(["signed", signed, false, false, false]);
  cases.push(["rejected", signed, false, false, false]);
  cases.push(["a/b", signed + " storage_init.ddi=/EFI/storage-init/root.v/", false, false, false]);
  cases.push(["pinned", "roothash=" + v1, false, false, false]);
  cases.push(["pinned, required", "roothash=" + v1 + " " + signed, false, false, false]);
  // A DDI in memory, at /ddi/root.raw in the initramfs.
  const memory = new Map<string, Uint8Array>([
    ["memory", ddi],
    ["memory refused", syntheticDdi(v1)],
    ["memory, then the ESP", syntheticDdi(v1)],
    ["the ESP, then memory", ddi],
  ]);
  const short = " storage_init.timeout=1 storage_init.failure_delay=0";
  cases.push(["memory", "roothash=" + hash, false, true, false]);
  cases.push(["memory refused", "roothash=" + hash + short, false, true, false]);
  cases.push(["memory, then the ESP", "roothash=" + hash, false, false, false]);
  cases.push([
    "the ESP, then memory",
    "roothash=" + hash + " storage_init.sources=esp,initrd" + short,
    false,
    true,
    false,
  ]);
  for (const [name, cmdline, noDdi, noDisk, primaryBroken] of cases) {
    const w = world(cmdline, {
      ddi,
      espFiles: noDdi ? new Map<string, Uint8Array>() : files.get(name),
      noDisk,
      primaryBroken,
    });
    const inMemory = memory.get(name);
    if (inMemory !== undefined) w.k.addFile("/ddi/root.raw", inMemory);
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
