// `npm run compare`: the second stage against a conventional initrd, on the same machine, disk,
// kernel, firmware and TPM (x86-64, QEMU TCG, one vCPU, 1 GiB). Both boot OVMF -> systemd-boot ->
// a UKI with its signed PCR 11 policy -> LUKS2 unlocked by the TPM -> LVM -> the ext4 root
// (qemu/encrypted_root.ts) -> multi-user.target:
//
//   second stage   storage-init's UKI (the virtio storage class); the DDI on the ESP is the
//                  Debian systemd initrd of qemu/second_stage.ts
//   dracut         a UKI whose initrd is the one Debian's dracut generates for such a system
//                  (qemu/conventional_initrd.ts)
//
// Rounds alternate the two (`--rounds N`, 3 by default); the figures are medians:
//   UKI            the file the firmware loads (and measures) whole
//   read before    bytes each disk delivered once the kernel had logged the root's ext4 mount
//   root mounted   (QEMU's own block statistics, asked through its monitor at that line; the
//                  guest runs on meanwhile): the firmware's reads of the ESP included
//   memory         MemTotal - MemAvailable as an early unit of the root runs
//                  (qemu/second_stage.ts), and the page cache and tmpfs then
//   root systemd   kernel timestamps: the root's systemd starting, and multi-user.target
//   multi-user
//   firmware       host clock from QEMU's start to the kernel's first line (firmware, loader,
//                  stub: reading the UKI)
// Each boot's console is kept as .build/compare/<name>/console-<n>.txt.
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildInit } from "../toolchain/build_init.mjs";
import { ROOT } from "../toolchain/tools.mjs";
import { bootQemu, consoleArgs } from "./boot.ts";
import { buildConventionalInitrd } from "./conventional_initrd.ts";
import { buildEncryptedRoot, pcrKey, tpmFor, UNLOCK_ARGS } from "./encrypted_root.ts";
import { fetchKernel } from "./kernel.mjs";
import { buildSecondStage } from "./second_stage.ts";
import { stampsOf } from "./timeline.mjs";
import { buildUefiDisk, DEMO_ESP_PART_UUID, firmware } from "./uefi.mjs";

const roundsAt = process.argv.indexOf("--rounds");
const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 3;
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds N: a whole number, 1 or more");

const kernel = fetchKernel("x86-64");
const built = await buildInit({ kernelDir: kernel.root, storage: ["virtio"], arch: "x86-64" });
const stage = await buildSecondStage();
const disk = await buildEncryptedRoot();
const dracut = buildConventionalInitrd();
/** systemd's messages with the kernel's timestamps. */
const LOG = "systemd.log_target=kmsg printk.devkmsg=on";

/** One configuration's ESP disk, UKI and firmware in `.build/compare/<name>`. */
function machine(name, initrd, cmdline, ddi) {
  const dir = join(ROOT, ".build", "compare", name);
  mkdirSync(dir, { recursive: true });
  const u = buildUefiDisk(dir, {
    kernel,
    initrd,
    cmdline: `${consoleArgs()} ${cmdline} ${UNLOCK_ARGS} ${LOG}`,
    ddi,
    espPartUuid: DEMO_ESP_PART_UUID,
    osRelease: `ID=debian\nPRETTY_NAME="Debian 12 (${name})"\n`,
    pcr: pcrKey(),
  });
  return { name, dir, esp: u.disk, ukiBytes: u.ukiSize, initrdBytes: statSync(initrd).size, boots: 0 };
}

const machines = [
  machine("second stage", built.initramfs, `roothash=${stage.rootHash}`, stage.ddi),
  machine("dracut", dracut, ""),
];

/** The figures of one boot of `m`. */
async function bootOnce(m) {
  const t0 = performance.now();
  let firmwareMs;
  const r = await bootQemu({
    firmware: firmware(m.dir),
    tpm: tpmFor(disk, m.dir),
    drives: [
      { file: m.esp, if: "virtio" },
      { file: disk.disk, if: "virtio", readonly: "snapshot" },
    ],
    memory: 1024,
    timeoutMs: 400000,
    query: { after: /EXT4-fs \(dm-\d+\): mounted filesystem/, command: "info blockstats" },
    onLine: (l) => {
      if (firmwareMs === undefined && /Linux version/.test(l)) firmwareMs = performance.now() - t0;
    },
  });
  const kept = join(m.dir, `console-${m.boots++}.txt`);
  writeFileSync(kept, r.output);
  if (r.timedOut || !/FINAL-ROOT-REACHED/.test(r.output))
    throw new Error(`${m.name}: the boot did not reach multi-user.target (its console: ${kept})`);
  const stamp = (re, last = false) => {
    const all = stampsOf(r.output, re);
    if (all.length === 0) throw new Error(`${re}: not in the console`);
    return last ? all[all.length - 1] : all[0];
  };
  const read = (drive) => {
    const stats = (r.reply ?? "").match(new RegExp(`^${drive}: .*\\brd_bytes=(\\d+)`, "m"));
    if (stats === null) throw new Error(`no block statistics of ${drive} when the root was mounted:\n${r.reply}`);
    return Number(stats[1]);
  };
  const meminfo = (field) => {
    const v = r.output.match(new RegExp(`ROOT-START-MEMORY .*\\b${field}: (\\d+) kB`));
    if (v === null) throw new Error(`no ${field} in the ROOT-START-MEMORY line`);
    return Number(v[1]);
  };
  return {
    espRead: read("d0"),
    diskRead: read("d1"),
    memoryKib: meminfo("MemTotal") - meminfo("MemAvailable"),
    cachedKib: meminfo("Cached") + meminfo("Buffers"),
    shmemKib: meminfo("Shmem"),
    rootSystemd: stamp(/systemd\[1\]: systemd \d+\S* running in system mode/, true),
    multiUser: stamp(/systemd\[1\]: Reached target multi-user\.target/),
    firmwareMs: firmwareMs ?? NaN,
  };
}

const results = new Map(machines.map((m) => [m.name, []]));
for (let i = 0; i < rounds; i++)
  for (const m of machines) {
    const f = await bootOnce(m);
    results.get(m.name)?.push(f);
    console.log(
      `compare: round ${i + 1} ${m.name}: root systemd ${f.rootSystemd.toFixed(2)} s, multi-user ${f.multiUser.toFixed(2)} s, ` +
        `read ESP ${f.espRead} + disk ${f.diskRead} bytes, memory ${f.memoryKib} KiB, firmware ${(f.firmwareMs / 1000).toFixed(1)} s`,
    );
  }

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
/** @type {Array<[string, (m: (typeof machines)[number], r: Array<Awaited<ReturnType<typeof bootOnce>>>) => string]>} */
const rows = [
  ["UKI (initrd in it)", (m) => `${mib(m.ukiBytes)} (${mib(m.initrdBytes)})`],
  ["read from the ESP's disk before the root is mounted", (m, r) => mib(median(r.map((x) => x.espRead)))],
  ["read from the encrypted disk before the root is mounted", (m, r) => mib(median(r.map((x) => x.diskRead)))],
  ["memory in use as an early unit of the root runs", (m, r) => mib(median(r.map((x) => x.memoryKib)) * 1024)],
  [
    "of which page cache and buffers / tmpfs",
    (m, r) => `${mib(median(r.map((x) => x.cachedKib)) * 1024)} / ${mib(median(r.map((x) => x.shmemKib)) * 1024)}`,
  ],
  ["kernel start -> the root's systemd", (m, r) => `${median(r.map((x) => x.rootSystemd)).toFixed(2)} s`],
  ["kernel start -> multi-user.target", (m, r) => `${median(r.map((x) => x.multiUser)).toFixed(2)} s`],
  [
    "QEMU start -> the kernel (firmware, loader, stub)",
    (m, r) => `${(median(r.map((x) => x.firmwareMs)) / 1000).toFixed(1)} s`,
  ],
];
console.log(`\n| medians of ${rounds} boots each | ${machines.map((m) => m.name).join(" | ")} |`);
console.log(`| --- | ${machines.map(() => "---").join(" | ")} |`);
for (const [label, f] of rows)
  console.log(`| ${label} | ${machines.map((m) => f(m, results.get(m.name) ?? [])).join(" | ")} |`);
