// `npm run bench`: boots the verity test disk N times (default 5) with storage-init's
// virtio-only initramfs, alternating with a hand-written C init doing the same syscalls
// (qemu/reference/reference_init.c, same modules, same disk), and prints from the kernel's own
// printk timestamps: "Run /init" -> the init hands over (its `starting /sbin/init` line), and
// -> the root's init is running (ROOT-REACHED), plus initramfs sizes and unpack times.
// Alternating runs share the machine's noise; compare medians. Then one more boot of each with
// QEMU's translation log: the basic blocks TCG translated while each init ran (deterministic,
// and most of an init's cost under TCG; qemu/translation.mjs), with storage-init's by function.
// storage-init's median boot is also drawn: .build/bench/timeline.svg (qemu/timeline.mjs).
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { buildInit } from "../toolchain/build_init.mjs";
import { moduleEntries } from "../toolchain/init_image.mjs";
import { writeInitramfs } from "../toolchain/initramfs.mjs";
import { DIST, elfEntry, kib, requireTool, ROOT, WORK } from "../toolchain/tools.mjs";
import { bootQemu } from "./boot.ts";
import { buildDisk } from "./images.ts";
import { fetchKernel } from "./kernel.mjs";
import { stampedLines, timelineSvg } from "./timeline.mjs";
import { initWindow, translatedBlocks, translationLogArgs } from "./translation.mjs";

/** The modules the virtio VM needs, in load order (what storage-init loads there). */
const REFERENCE_MODULES = [
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_ring",
  "virtio",
  "virtio_pci",
  "virtio_blk",
  "fat",
  "vfat",
  "nls_cp437",
  "nls_ascii",
  "loop",
  "dm-mod",
  "dm-bufio",
  "reed_solomon",
  "dm-verity",
  "crc32c_generic",
  "libcrc32c",
  "erofs",
];

async function referenceInitramfs(kernel) {
  requireTool("musl-gcc");
  const bin = join(DIST, "reference-init");
  execFileSync("musl-gcc", ["-static", "-O2", "-s", join(ROOT, "qemu", "reference", "reference_init.c"), "-o", bin]);
  const mods = moduleEntries(kernel.modulesDir, { storage: ["virtio"] });
  const files = mods.entries.filter((e) => e.path !== "modules/table");
  const byName = new Map(files.map((e) => [e.path.slice("modules/".length).replace(/\.ko.*$/, ""), e]));
  const order = REFERENCE_MODULES.map((m) => {
    if (!byName.has(m)) throw new Error(`reference init: module ${m} not in the closure`);
    return byName.get(m).path.slice("modules/".length);
  });
  const r = writeInitramfs(bin, join(DIST, "initramfs-reference.cpio.gz"), [
    ...files,
    { path: "modules/order", type: "file", data: Buffer.from(order.join("\n") + "\n") },
  ]);
  return { initramfs: r.path, size: r.size, binarySize: statSync(bin).size, binary: bin };
}

const runs = Number(process.argv[2] ?? 5);
const kernel = fetchKernel();
const built = await buildInit({ kernelDir: kernel.root, storage: ["virtio"] });
const ref = await referenceInitramfs(kernel);
const disk = await buildDisk({});
const at = (lines, re) => lines.find((l) => re.test(l.text))?.t;

async function once(initrd, handoverRe, extraArgs = []) {
  const r = await bootQemu({
    kernel: kernel.vmlinuz,
    initrd,
    append: `roothash=${disk.rootHash} storage_init.timeout=20`,
    drives: [{ file: disk.disk, if: "virtio" }],
    timeoutMs: 600000,
    extraArgs,
  });
  const lines = stampedLines(r.output);
  const run = at(lines, /Run \/init as init process/);
  const handover = at(lines, handoverRe);
  const reached = at(lines, /ROOT-REACHED/);
  const unpackStart = at(lines, /Trying to unpack rootfs image as initramfs/);
  const unpackEnd = at(lines, /Freeing initrd memory/);
  if (run === undefined || reached === undefined || handover === undefined) {
    console.error(r.output);
    throw new Error(`${initrd}: the root was not reached`);
  }
  return {
    output: r.output,
    handover: (handover - run) * 1000,
    reached: (reached - run) * 1000,
    unpack: unpackEnd && unpackStart ? (unpackEnd - unpackStart) * 1000 : NaN,
  };
}

const ours = [];
const theirs = [];
for (let i = 0; i < runs; i++) {
  ours.push(await once(built.initramfs, /storage-init: starting \/sbin\/init/));
  theirs.push(await once(ref.initramfs, /reference-init: starting \/sbin\/init/));
  const o = ours[i],
    c = theirs[i];
  console.log(
    `run ${i + 1}: storage-init handover ${o.handover.toFixed(0)} ms, root ${o.reached.toFixed(0)} ms | C reference handover ${c.handover.toFixed(0)} ms, root ${c.reached.toFixed(0)} ms`,
  );
}
const median = (rows, k) => {
  const v = rows.map((r) => r[k]).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
const line = (label, k) => {
  const o = median(ours, k),
    c = median(theirs, k);
  return `  ${label.padEnd(44)} storage-init ${o.toFixed(0).padStart(5)} ms   C reference ${c.toFixed(0).padStart(5)} ms   (${((o / c - 1) * 100).toFixed(0)}%)`;
};
console.log(`\nbench: ${runs} boots each, alternating, kernel ${kernel.package}, QEMU TCG, medians`);
console.log(line('"Run /init" -> the init hands over', "handover"));
console.log(line('"Run /init" -> the root\'s init is running', "reached"));
console.log(line("initramfs unpack (before /init)", "unpack"));
console.log(`  init binary: storage-init ${kib(built.binarySize)}, C reference ${kib(ref.binarySize)}`);
console.log(`  initramfs:   storage-init ${kib(built.initramfsSize)}, C reference ${kib(ref.size)}`);
// The picture of storage-init's median boot (by its time to the root's init).
const pictured = [...ours].sort((a, b) => a.reached - b.reached)[Math.floor(ours.length / 2)];
const picture = join(WORK, "bench", "timeline.svg");
mkdirSync(dirname(picture), { recursive: true });
writeFileSync(
  picture,
  timelineSvg(pictured.output, `npm run bench: storage-init's median boot, ${kernel.package}, QEMU TCG`),
);
console.log(`  the median boot as a picture: ${relative(ROOT, picture)}`);

/** One boot with the translation log; the blocks translated in the init's window. */
async function translation(initrd, handoverRe, binary, debugElf) {
  const log = join(DIST, `translation-${process.pid}.log`);
  try {
    await once(initrd, handoverRe, translationLogArgs(log));
    return initWindow(translatedBlocks(log), elfEntry(binary), disk.markerEntry, debugElf);
  } finally {
    rmSync(log, { force: true });
  }
}
const tOurs = await translation(
  built.initramfs,
  /storage-init: starting \/sbin\/init/,
  built.binary,
  `${built.binary}.debug`,
);
const tTheirs = await translation(ref.initramfs, /reference-init: starting \/sbin\/init/, ref.binary);
console.log(`\nbench: basic blocks TCG translated while the init ran (one boot each, deterministic)`);
console.log(
  `  storage-init: ${tOurs.user} in the init, ${tOurs.kernel} in the kernel; C reference: ${tTheirs.user} in the init, ${tTheirs.kernel} in the kernel`,
);
console.log(
  `  storage-init's blocks by function: ${tOurs.byFunction
    .slice(0, 25)
    .map(([n, c]) => `${n} ${c}`)
    .join(", ")}`,
);
