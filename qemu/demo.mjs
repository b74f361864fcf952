// `npm start`: builds the init (virtio storage class: what the demo VM has), builds the demo
// disk (Debian with systemd in a verity DDI on the ESP), boots it under QEMU on Debian's kernel,
// shows the serial console as it comes, and ends with the boot timeline taken from the kernel's
// own timestamps.
import { buildInit } from "../toolchain/init_image.mjs";
import { kib } from "../toolchain/tools.mjs";
import { bootQemu } from "./boot.mjs";
import { buildDemoDisk } from "./demo_root.mjs";
import { fetchKernel } from "./kernel.mjs";
import { timeline } from "./timeline.mjs";

const kernel = fetchKernel();
const built = await buildInit({ kernelDir: kernel.root, storage: ["virtio"] });
const disk = await buildDemoDisk();
console.log(`demo: kernel ${kernel.package}, init ${kib(built.binarySize)}, initramfs ${kib(built.initramfsSize)}`);
const r = await bootQemu({
  kernel: kernel.vmlinuz,
  initrd: built.initramfs,
  append: `roothash=${disk.rootHash} systemd.show_status=1`,
  drives: [{ file: disk.disk, if: "virtio" }],
  memory: 1024,
  timeoutMs: 300000,
  onLine: (l) => console.log(l),
});
console.log("\n" + timeline(r.output));
if (r.timedOut || !/ROOT-REACHED/.test(r.output)) {
  console.error(r.timedOut ? "demo: the boot did not finish within 300 s" : "demo: the root was not reached");
  process.exit(1);
}
