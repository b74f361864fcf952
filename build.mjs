#!/usr/bin/env node
// The build's command line. What it runs lives in toolchain/ (docs/architecture.md).
//
//   node build.mjs                      dist/storage-init and an initramfs without modules
//   node build.mjs --kernel DIR [--storage virtio,nvme,sata,usb,mmc|all]
//                                       ... with the storage module closure of the kernel
//                                       unpacked in DIR (DIR/lib/modules/<version>), for the
//                                       storage classes given (default all)
//   node build.mjs tests                what the boot tests boot: the init with every storage
//                                       class, for the Debian kernel qemu/kernel.mjs fetches
//
// `npm run build` type-checks first (tsc --noEmit): the bundler relies on the annotations.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { register } from "tsx/esm/api";

// The toolchain imports the TypeScript it shares with the init (the module table format).
register();
const { buildInit } = await import("./toolchain/init_image.mjs");
const { hardwareModules } = await import("./toolchain/module_closure.ts");

async function cli(argv) {
  if (argv[0] === "tests") {
    const { fetchKernel } = await import("./qemu/kernel.mjs");
    await buildInit({ kernelDir: fetchKernel().root, storage: ["all"] });
    return;
  }
  let kernelDir;
  let storage = ["all"];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--kernel") kernelDir = resolve(argv[++i]);
    else if (argv[i] === "--storage") storage = argv[++i].split(",");
    else
      throw new Error(
        `unknown argument ${argv[i]}; usage: node build.mjs [--kernel DIR [--storage CLASS,...]] | tests`,
      );
  }
  if (kernelDir && !existsSync(kernelDir)) throw new Error(`--kernel ${kernelDir}: no such directory`);
  hardwareModules(storage); // an unknown class stops here, before the compile
  await buildInit({ kernelDir, storage });
}

try {
  await cli(process.argv.slice(2));
} catch (e) {
  console.error(`build: ${e.message}`);
  process.exit(1);
}
