// `npm start`: builds the init, boots it under QEMU on a real Debian kernel, shows the serial
// console as it comes, and ends with the boot timeline from the kernel's own timestamps.
import { buildInit } from "../build.mjs";
import { bootQemu } from "./boot.mjs";
import { fetchKernel } from "./kernel.mjs";
import { timeline } from "./timeline.mjs";

const kernel = fetchKernel();
const built = await buildInit();
console.log(`demo: kernel ${kernel.package}, init ${(built.binarySize / 1024).toFixed(1)} KiB, initramfs ${(built.initramfsSize / 1024).toFixed(1)} KiB`);
const r = await bootQemu({
  kernel: kernel.vmlinuz,
  initrd: built.initramfs,
  append: "",
  timeoutMs: 180000,
  onLine: (l) => console.log(l),
});
console.log("\n" + timeline(r.output));
if (r.timedOut) {
  console.error("demo: the boot did not finish within 180 s");
  process.exit(1);
}
