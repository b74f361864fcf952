// A real Debian kernel and its modules, fetched with apt-get download and unpacked with
// dpkg-deb (nothing is installed), cached under .cache/kernel/<package>/.
//
// The package is linux-image-amd64's current dependency unless STORAGE_INIT_KERNEL_PACKAGE names
// one (e.g. linux-image-6.1.0-56-amd64). depmod runs on the unpacked tree because the .deb ships
// no modules.dep/modules.alias.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE, requireTool, run } from "../toolchain/tools.mjs";

/** The linux-image package to use. */
export function kernelPackage() {
  const forced = process.env.STORAGE_INIT_KERNEL_PACKAGE;
  if (forced) return forced;
  let out;
  try {
    out = run("apt-cache", ["depends", "linux-image-amd64"]);
  } catch (e) {
    throw new Error(`apt-cache depends linux-image-amd64 failed (run 'apt-get update' first): ${e.message}`);
  }
  const m = out.match(/Depends: (linux-image-[0-9][^\s]*-amd64)\b/);
  if (!m)
    throw new Error(`cannot find the kernel package behind linux-image-amd64 (run 'apt-get update' first):\n${out}`);
  return m[1];
}

/** The kernel fetchKernel() left in the cache, as it returns it, or undefined when there is none (nothing is fetched). */
export function cachedKernel() {
  let pkg;
  try {
    pkg = kernelPackage();
  } catch {
    return undefined;
  }
  return existsSync(join(CACHE, "kernel", pkg, "root", ".complete")) ? described(pkg) : undefined;
}

function described(pkg) {
  const root = join(CACHE, "kernel", pkg, "root");
  const version = readdirSync(join(root, "lib", "modules"))[0];
  const vmlinuz = join(root, "boot", `vmlinuz-${version}`);
  return { package: pkg, root, version, vmlinuz, modulesDir: join(root, "lib", "modules", version) };
}

/** Returns { vmlinuz, root, modulesDir, version } for the cached (or freshly fetched) kernel. */
export function fetchKernel() {
  const pkg = kernelPackage();
  const dir = join(CACHE, "kernel", pkg);
  const done = join(dir, "root", ".complete");
  if (!existsSync(done)) {
    requireTool("depmod");
    requireTool("dpkg-deb");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const t0 = performance.now();
    run("apt-get", ["download", pkg], { cwd: dir });
    const deb = readdirSync(dir).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
    const tmp = join(dir, "root.tmp");
    run("dpkg-deb", ["-x", join(dir, deb), tmp]);
    const version = readdirSync(join(tmp, "lib", "modules"))[0];
    run("depmod", ["-b", tmp, version]);
    rmSync(join(dir, deb));
    renameSync(tmp, join(dir, "root"));
    writeFileSync(done, "");
    console.log(`kernel: fetched ${pkg} (${version}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return described(pkg);
}
