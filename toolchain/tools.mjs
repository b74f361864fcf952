// Paths of the project and the helpers every build-time script shares: external tools (checked,
// run), timed steps, sizes.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
export const DIST = join(ROOT, "dist");
export const WORK = join(ROOT, ".build");
export const CACHE = join(ROOT, ".cache");

/** Tools the build, the images and the tests need, with the Debian package that has them. */
const PACKAGES = {
  "musl-gcc": "musl-tools",
  depmod: "kmod",
  "dpkg-deb": "dpkg",
  sgdisk: "gdisk",
  "mkfs.erofs": "erofs-utils",
  veritysetup: "cryptsetup-bin",
  "mkfs.vfat": "dosfstools",
  mcopy: "mtools",
  objcopy: "binutils",
  "aarch64-linux-gnu-objcopy": "binutils-aarch64-linux-gnu",
  "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
  sbsign: "sbsigntool",
  xz: "xz-utils",
};

/** Throws, naming the Debian package to install, when `name` is not on the PATH. */
export function requireTool(name) {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
  } catch {
    throw new Error(`${name} not found: install it with 'apt-get install ${PACKAGES[name] ?? name}'`);
  }
}

/** Runs a program and returns its standard output; its standard error is kept for the error. */
export function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
}

/** Runs fn, printing what it did and how long it took. */
export async function step(what, fn) {
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const extra = typeof r === "string" ? ` ${r}` : "";
  console.log(`build: ${what}${extra} (${ms.toFixed(0)} ms)`);
  return r;
}

export function kib(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

/** `n` bytes in MiB, one decimal. */
export function mib(n) {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** A static 64-bit little-endian ELF's entry point (e_entry), as a bigint. */
export function elfEntry(file) {
  return readFileSync(file).readBigUInt64LE(24);
}
