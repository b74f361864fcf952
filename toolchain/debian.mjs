// Files from a Debian package of another architecture, fetched with apt-get download and
// unpacked with dpkg-deb (nothing is installed), cached under .cache/debian/<package>/.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE, requireTool, run } from "./tools.mjs";

/** The unpacked root of `pkg` ("name:arch"), fetched once. */
export function debianPackage(pkg) {
  const dir = join(CACHE, "debian", pkg.replace(":", "_"));
  const root = join(dir, "root");
  if (existsSync(join(dir, ".complete"))) return root;
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
  run("dpkg-deb", ["-x", join(dir, deb), `${root}.tmp`]);
  rmSync(join(dir, deb));
  renameSync(`${root}.tmp`, root);
  writeFileSync(join(dir, ".complete"), "");
  return root;
}
