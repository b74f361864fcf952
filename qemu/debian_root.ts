// Debian roots made by debootstrap from the machine's Debian mirror, cached under
// .cache/debian-roots/, and commands run in them by chroot: Debian 12 (bookworm) and Debian 13
// (trixie) as a user's installed system, to install the package into and run kernel-install in.
// A root's binaries run with the root's own libraries, so trixie's run here too. The chroot
// has /proc, /sys and /dev bound in a mount namespace of its own (unshare): the binds end with
// it, whatever way it ends, and never outlive it in the tree.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DEBIAN_RELEASES } from "../toolchain/debian.mjs";
import { CACHE, requireTool, run } from "../toolchain/tools.mjs";
import { debianMirror } from "./demo_root.mjs";
import { keyOf } from "./second_stage.js";

/** A Debian release of toolchain/debian.mjs DEBIAN_RELEASES. */
export type DebianRelease = keyof typeof DEBIAN_RELEASES;

/** Runs `argv` chrooted in `tree`, with `env` added to the environment; returns its output. */
export function inChroot(tree: string, argv: string[], env: Record<string, string> = {}): string {
  requireTool("unshare");
  requireTool("chroot");
  return run(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-ec",
      // The tree bound onto itself: / in the chroot is a mount point, as mkosi's sandbox needs.
      'mount --bind "$1" "$1"; for d in proc sys dev; do mount --rbind "/$d" "$1/$d"; done; shift; exec chroot "$@"',
      "sh",
      tree,
      tree,
      ...argv,
    ],
    { env: { ...process.env, ...env, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } },
  );
}

/**
 * A minbase root of `release` with `packages`, made once under .cache/debian-roots/ (a few
 * minutes) and not changed after: copy it (second_stage.ts copyTree) before installing into it.
 */
export function debianRoot(release: DebianRelease, packages: string[]): string {
  const tree = join(CACHE, "debian-roots", `${release}-${keyOf(release, ...packages)}`);
  if (existsSync(`${tree}.complete`)) return tree;
  requireTool("debootstrap");
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(CACHE, "debian-roots"), { recursive: true });
  const t0 = performance.now();
  console.log(`debian root: debootstrap ${release} with ${packages.join(", ")} (a few minutes)`);
  run("debootstrap", ["--variant=minbase", release, tree, debianMirror()]);
  // apt, not debootstrap, installs them: debootstrap does not resolve virtual packages (ukify's
  // python3-zstandard needs python3-cffi-backend-api-*).
  inChroot(tree, ["apt-get", "install", "-y", "--no-install-recommends", ...packages], {
    DEBIAN_FRONTEND: "noninteractive",
  });
  inChroot(tree, ["apt-get", "clean"]);
  writeFileSync(`${tree}.complete`, "");
  console.log(`debian root: ${release} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return tree;
}
