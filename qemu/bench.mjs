// `npm run bench`: boots the verity test disk N times (default 5) with the virtio-only initramfs
// and prints, from the kernel's own printk timestamps, the time from "Run /init" to the init
// handing over (`starting /sbin/init`) and to the root's init running (ROOT-REACHED), plus the
// initramfs unpack time and the sizes.
import { buildInit } from "../build.mjs";
import { bootQemu } from "./boot.mjs";
import { buildDisk } from "./images.mjs";
import { fetchKernel } from "./kernel.mjs";
import { stampedLines } from "./timeline.mjs";

const runs = Number(process.argv[2] ?? 5);
const kernel = fetchKernel();
const built = await buildInit({ kernelDir: kernel.root, storage: ["virtio"] });
const disk = await buildDisk({});
const at = (lines, re) => lines.find((l) => re.test(l.text))?.t;
const rows = [];
for (let i = 0; i < runs; i++) {
  const r = await bootQemu({ kernel: kernel.vmlinuz, initrd: built.initramfs, append: `roothash=${disk.rootHash} storage_init.timeout=20`, drives: [{ file: disk.disk, if: "virtio" }], timeoutMs: 120000 });
  const lines = stampedLines(r.output);
  const run = at(lines, /Run \/init as init process/);
  const handover = at(lines, /storage-init: starting \/sbin\/init/);
  const reached = at(lines, /ROOT-REACHED/);
  const unpackStart = at(lines, /Trying to unpack rootfs image as initramfs/);
  const unpackEnd = at(lines, /Freeing initrd memory/);
  if (run === undefined || reached === undefined || handover === undefined) {
    console.error(r.output);
    throw new Error(`run ${i + 1}: the root was not reached`);
  }
  rows.push({ handover: (handover - run) * 1000, reached: (reached - run) * 1000, unpack: unpackEnd && unpackStart ? (unpackEnd - unpackStart) * 1000 : NaN });
  console.log(`run ${i + 1}: /init -> handover ${rows[i].handover.toFixed(0)} ms, -> root init ${rows[i].reached.toFixed(0)} ms, initramfs unpack ${rows[i].unpack.toFixed(0)} ms`);
}
const stat = (k) => {
  const v = rows.map((r) => r[k]).sort((a, b) => a - b);
  return `median ${v[Math.floor(v.length / 2)].toFixed(0)} ms (min ${v[0].toFixed(0)}, max ${v[v.length - 1].toFixed(0)})`;
};
console.log(`\nbench: ${runs} boots, kernel ${kernel.package}, TCG`);
console.log(`  "Run /init" -> storage-init hands over:   ${stat("handover")}`);
console.log(`  "Run /init" -> the root's init is running: ${stat("reached")}`);
console.log(`  initramfs unpack (before /init):         ${stat("unpack")}`);
console.log(`  init binary ${(built.binarySize / 1024).toFixed(1)} KiB, initramfs (virtio) ${(built.initramfsSize / 1024).toFixed(1)} KiB`);
