// A real Debian kernel and its modules, fetched with apt-get download and unpacked with
// dpkg-deb (nothing is installed), cached under .cache/kernel/<package>/.
//
// The package is the current dependency of the architecture's kernel metapackage
// (toolchain/arches.ts: linux-image-amd64; for arm64 linux-image-arm64, with the arm64
// architecture added to dpkg) in a Debian release (toolchain/debian.mjs DEBIAN_RELEASES:
// bookworm's 6.1 unless another is asked for, trixie's 6.12 with xz-compressed modules), unless
// the variable the table names (STORAGE_INIT_KERNEL_PACKAGE, STORAGE_INIT_KERNEL_PACKAGE_ARM64)
// names one for bookworm (e.g. linux-image-6.1.0-56-amd64). depmod runs on the unpacked tree
// because the .deb ships no modules.dep/modules.alias.
import { existsSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { archFacts, debianPackageFor } from "../toolchain/arches.ts";
import { aptFor, DEFAULT_RELEASE, unpackDebianPackage } from "../toolchain/debian.mjs";
import { kernelRelease } from "../toolchain/init_image.mjs";
import { CACHE, requireTool, run } from "../toolchain/tools.mjs";

/** The linux-image package to use for `arch` ("x86-64" or "arm64") from Debian `release`. */
export function kernelPackage(arch = "x86-64", release = DEFAULT_RELEASE) {
  const a = archFacts(arch);
  const forced = process.env[a.kernel.env];
  if (forced && release === DEFAULT_RELEASE) return forced;
  const meta = debianPackageFor(arch, a.kernel.metapackage);
  let out;
  try {
    out = run("apt-cache", [...aptFor(release), "depends", meta]);
  } catch (e) {
    const hint = a.foreign ? `dpkg --add-architecture ${a.debian}, then ` : "";
    throw new Error(`apt-cache depends ${meta} failed (${hint}run 'apt-get update' first): ${e.message}`);
  }
  const m = out.match(new RegExp(`Depends: (linux-image-[0-9][^\\s:]*-${a.debian})\\b`));
  if (!m) throw new Error(`cannot find the kernel package behind ${meta} (run 'apt-get update' first):\n${out}`);
  return debianPackageFor(arch, m[1]);
}

/** The kernel fetchKernel() left in the cache, as it returns it, or undefined when there is none (nothing is fetched). */
export function cachedKernel(arch = "x86-64", release = DEFAULT_RELEASE) {
  let pkg;
  try {
    pkg = kernelPackage(arch, release);
  } catch {
    return undefined;
  }
  return existsSync(join(CACHE, "kernel", dirName(pkg), "root", ".complete")) ? described(pkg) : undefined;
}

/** The cache folder of a package ("linux-image-6.1.0-57-arm64:arm64" -> without ":arm64"). */
function dirName(pkg) {
  return pkg.split(":")[0];
}

function described(pkg) {
  const root = join(CACHE, "kernel", dirName(pkg), "root");
  const version = readdirSync(join(root, "lib", "modules"))[0];
  const vmlinuz = join(root, "boot", `vmlinuz-${version}`);
  return { package: pkg, root, version, vmlinuz, modulesDir: join(root, "lib", "modules", version) };
}

/**
 * Returns { vmlinuz, root, modulesDir, version } for the cached (or freshly fetched) kernel of
 * `arch` from Debian `release`.
 */
export function fetchKernel(arch = "x86-64", release = DEFAULT_RELEASE) {
  const pkg = kernelPackage(arch, release);
  const dir = join(CACHE, "kernel", dirName(pkg));
  if (!existsSync(join(dir, "root", ".complete"))) {
    requireTool("depmod");
    const t0 = performance.now();
    unpackDebianPackage(
      pkg,
      dir,
      (root) => {
        // depmod -b reads <root>/lib/modules: Debian 13's package has them in usr/lib, as its
        // merged /usr links lib to.
        if (!existsSync(join(root, "lib")) && existsSync(join(root, "usr", "lib", "modules")))
          symlinkSync("usr/lib", join(root, "lib"));
        run("depmod", ["-b", root, kernelRelease(root)]);
      },
      aptFor(release),
    );
    console.log(`kernel: fetched ${pkg} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return described(pkg);
}
