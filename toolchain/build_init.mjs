// The init compiled (toolchain/native.mjs) and packed into its initramfs (toolchain/init_image.mjs),
// its build facts written beside it for packing it again later.
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { distName } from "./arches.ts";
import { factsPathOf, initramfsPath, modulesDirOf, packInitramfs } from "./init_image.mjs";
import { compileNative } from "./native.mjs";
import { DIST, ROOT } from "./tools.mjs";

/**
 * The init and an initramfs in `out` (storage-init[-<arch>], initramfsPath()): with the storage
 * module closure of the kernel in `kernelDir` for the `storage` classes, or without modules when
 * no kernel is given.
 * @param {{ kernelDir?: string, storage?: string[], out?: string, arch?: string, rootPolicy?: string, minVersion?: string, certificates?: string[] }} [options]
 */
export async function buildInit({
  kernelDir,
  storage = ["all"],
  out = DIST,
  arch = "x86-64",
  rootPolicy = "verity",
  minVersion = "",
  certificates = [],
} = {}) {
  const binary = await compileNative(join(ROOT, "runtime", "init.ts"), join(out, distName(arch, "storage-init")), {
    arch,
    rootPolicy,
    minVersion,
    certificates,
  });
  const facts = { arch, rootPolicy, minVersion, certificates: certificates.join(",") };
  writeFileSync(factsPathOf(binary), JSON.stringify(facts) + "\n");
  const initramfs = initramfsPath(out, arch, kernelDir ? storage : undefined);
  await packInitramfs({ init: binary, out: initramfs, modulesDir: kernelDir && modulesDirOf(kernelDir), storage });
  return { binary, initramfs, binarySize: statSync(binary).size, initramfsSize: statSync(initramfs).size };
}
