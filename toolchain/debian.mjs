// Debian packages unpacked, not installed: apt-get download, then dpkg-deb -x into a cache
// folder (the kernels the tests boot, systemd-boot for another architecture, systemd-repart
// and systemd-measure from bookworm-backports).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE, requireTool, run } from "./tools.mjs";

/**
 * Unpacks `pkg` ("name" or "name:arch") into `dir`/root, once: `prepare(root)` runs on the
 * unpacked tree before it is marked complete (root/.complete). Returns the root.
 */
export function unpackDebianPackage(pkg, dir, prepare = (_root) => {}, aptArgs = []) {
  const root = join(dir, "root");
  if (existsSync(join(root, ".complete"))) return root;
  requireTool("dpkg-deb");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    run("apt-get", [...aptArgs, "download", pkg], { cwd: dir });
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

/** The unpacked root of `pkg` ("name:arch") from Debian `release`, under .cache/debian/. */
export function debianPackage(pkg, release = DEFAULT_RELEASE) {
  const name = pkg.replace(":", "_");
  const dir = join(CACHE, "debian", release === DEFAULT_RELEASE ? name : `${release}-${name}`);
  return unpackDebianPackage(pkg, dir, () => {}, aptFor(release));
}

/**
 * The Debian releases the project builds for and boots: bookworm (12), the build machine's own,
 * whose apt configuration is used as it is, and trixie (13), whose packages come through an apt
 * configuration of its own (privateApt()). Its kernel ships its modules xz-compressed.
 */
export const DEBIAN_RELEASES = {
  bookworm: { version: 12, ownApt: true },
  trixie: { version: 13, ownApt: false },
};

/** The release a build or boot uses unless told. */
export const DEFAULT_RELEASE = "bookworm";

/** apt-get's options for `release`'s packages (none for the machine's own). */
export function aptFor(release) {
  const r = DEBIAN_RELEASES[release];
  if (r === undefined) throw new Error(`Debian ${release}: ${Object.keys(DEBIAN_RELEASES).join(" or ")}`);
  return r.ownApt ? [] : privateApt(release);
}

/**
 * Options that point apt-get at Debian's `suite` alone, with its own lists under
 * .cache/debian/<suite>: the machine's sources and installed packages stay as they are.
 */
function privateApt(suite) {
  const dir = join(CACHE, "debian", suite === "bookworm-backports" ? "backports" : suite);
  const lists = join(dir, "lists");
  const args = [
    "-o",
    `Dir::Etc::SourceList=${join(dir, "sources.list")}`,
    "-o",
    "Dir::Etc::SourceParts=-",
    "-o",
    `Dir::State::Lists=${lists}`,
    "-o",
    `Dir::Cache=${join(dir, "cache")}`,
  ];
  if (!existsSync(join(lists, ".updated"))) {
    mkdirSync(join(lists, "partial"), { recursive: true });
    mkdirSync(join(dir, "cache", "archives", "partial"), { recursive: true });
    writeFileSync(join(dir, "sources.list"), `deb http://deb.debian.org/debian ${suite} main\n`);
    run("apt-get", [...args, "update"]);
    writeFileSync(join(lists, ".updated"), "");
  }
  return args;
}

/**
 * A program of bookworm-backports' systemd (254), unpacked with the libsystemd-shared it links:
 * systemd-repart (--offline, Format=erofs, Verity=signature without loop devices) and
 * systemd-measure (predicts and signs PCR 11 without a TPM), which bookworm's 252 lacks or
 * cannot do that way. `path` is the program's place in the package. Returns { bin, env,
 * version }: run bin with env.
 */
function systemdBackport(path) {
  const apt = privateApt("bookworm-backports");
  const dir = join(CACHE, "debian", "systemd-backports");
  const version = run("apt-cache", [...apt, "show", "--no-all-versions", "systemd"])
    .split("\n")
    .find((l) => l.startsWith("Version: "))
    ?.slice("Version: ".length)
    .trim();
  if (version === undefined) throw new Error("bookworm-backports lists no systemd");
  const tag = join(dir, "version");
  if (!existsSync(tag) || readFileSync(tag, "utf8") !== version) rmSync(dir, { recursive: true, force: true });
  const systemd = unpackDebianPackage(`systemd=${version}`, join(dir, "systemd"), () => {}, apt);
  const shared = unpackDebianPackage(`libsystemd-shared=${version}`, join(dir, "libsystemd-shared"), () => {}, apt);
  writeFileSync(tag, version);
  return {
    bin: join(systemd, path),
    env: { ...process.env, LD_LIBRARY_PATH: join(shared, "usr", "lib", "x86_64-linux-gnu", "systemd") },
    version,
  };
}

/** systemd-repart 254 (systemdBackport). */
export function systemdRepart() {
  return systemdBackport(join("bin", "systemd-repart"));
}

/**
 * systemd-measure 254 (systemdBackport). It computes the PCR policy with the TPM2 software
 * stack's marshalling library, which it loads at run time: libtss2-mu0, libtss2-esys and
 * libtss2-rc0 must be installed.
 */
export function systemdMeasure() {
  return systemdBackport(join("lib", "systemd", "systemd-measure"));
}
