// Debian packages unpacked, not installed: apt-get download, then dpkg-deb -x into a cache
// folder (the kernels the tests boot, systemd-boot for another architecture).
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE, requireTool, run } from "./tools.mjs";

/**
 * Unpacks `pkg` ("name" or "name:arch") into `dir`/root, once: `prepare(root)` runs on the
 * unpacked tree before it is marked complete (root/.complete). Returns the root.
 */
export function unpackDebianPackage(pkg, dir, prepare = (_root) => {}) {
  const root = join(dir, "root");
  if (existsSync(join(root, ".complete"))) return root;
  requireTool("dpkg-deb");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    run("apt-get", ["download", pkg], { cwd: dir });
  } catch (e) {
    const arch = pkg.split(":")[1];
    const hint = arch ? ` (dpkg --add-architecture ${arch}; apt-get update)` : "";
    throw new Error(`apt-get download ${pkg} failed${hint}: ${e.message}`);
  }
  const deb = readdirSync(dir).find((f) => f.endsWith(".deb"));
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
  const tmp = `${root}.tmp`;
  run("dpkg-deb", ["-x", join(dir, deb), tmp]);
  prepare(tmp);
  rmSync(join(dir, deb));
  renameSync(tmp, root);
  writeFileSync(join(root, ".complete"), "");
  return root;
}

/** The unpacked root of `pkg` ("name:arch"), under .cache/debian/. */
export function debianPackage(pkg) {
  return unpackDebianPackage(pkg, join(CACHE, "debian", pkg.replace(":", "_")));
}
