// `npm run deb [-- --arch arm64]`: the Debian package storage-init_<version>_<arch>.deb, built
// with dpkg-deb alone. It holds the init compiled for its architecture with the default policy
// (what the command line then raises: storage_init.root_policy=, min_version=,
// certificate_fingerprint=, signed in the UKI), the `storage-init` command bundled into one file
// that Debian's nodejs runs, the kernel-install plugin, and the README.
//
//   /usr/bin/storage-init -> ../lib/storage-init/command.mjs
//   /usr/lib/storage-init/{command.mjs, storage-init[-arm64], storage-init[-arm64].json}
//   /usr/lib/kernel/install.d/50-storage-init.install
//   /usr/share/doc/storage-init/{README.md.gz, copyright, changelog.Debian.gz}
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  lstatSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { archFacts, distName, isArch } from "./arches.ts";
import { buildInit } from "./build_init.mjs";
import { factsPathOf } from "./init_image.mjs";
import { DIST, kib, requireTool, ROOT, WORK } from "./tools.mjs";

/** Where the package installs the init and the command's bundle. */
export const LIBDIR = "/usr/lib/storage-init";

const PACKAGE = "storage-init";

/** Node in Debian 12 (18.19) and 13 (20.19): the bundle's target is the older. */
const NODE_TARGET = "node18";

/**
 * The control file's fields. Depends: Node runs the command, xz decompresses Debian 13's
 * modules (zstd, other distributions' modules, is suggested). Recommends: what `uki` uses
 * (systemd-stub from systemd-boot-efi, objcopy from binutils); Suggests: what signing and
 * `check` use, and what runs the kernel-install plugin.
 */
function control(version, debArch, installedKiB) {
  return [
    `Package: ${PACKAGE}`,
    `Version: ${version}`,
    `Architecture: ${debArch}`,
    "Maintainer: storage-init maintainers <maintainers@users.noreply.r-seed-41fbf1d3.example>",
    `Installed-Size: ${installedKiB}`,
    "Depends: nodejs (>= 18), xz-utils",
    "Recommends: systemd-boot-efi, binutils",
    "Suggests: systemd, zstd, sbsigntool, cryptsetup-bin, erofs-utils, openssl",
    "Section: admin",
    "Priority: optional",
    "Description: proto-initrd that boots a verified disk image from the ESP",
    " storage-init is a PID 1 for the first instant of Linux userspace, compiled",
    " ahead of time to a small static binary. In the initramfs of a UKI it loads",
    " only the storage drivers the hardware needs, finds the EFI System Partition,",
    " attaches the disk image stored there through dm-verity, pinned by roothash=",
    " on the signed kernel command line or by a signature the kernel checks, and",
    " switches into it.",
    " .",
    " This package holds the compiled init, the storage-init command that packs it",
    " with a kernel's modules into an initramfs and builds UKIs, and a",
    " kernel-install plugin (initrd_generator=storage-init).",
    "",
  ].join("\n");
}

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: storage-init

Files: *
Copyright: storage-init maintainers
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
`;

/** The files (not links) and the folders under `dir`, relative, sorted. */
function treeEntries(dir, at = "") {
  const files = [];
  const folders = [];
  for (const name of readdirSync(join(dir, at)).sort()) {
    const rel = at === "" ? name : `${at}/${name}`;
    const st = lstatSync(join(dir, rel));
    if (st.isDirectory()) {
      const inner = treeEntries(dir, rel);
      folders.push(rel, ...inner.folders);
      files.push(...inner.files);
    } else if (st.isFile()) files.push(rel);
  }
  return { files, folders };
}

/** Sets the times of everything under `dir` to `epoch`: the archive does not depend on when it was built. */
function clampTimes(dir, epoch) {
  const { files, folders } = treeEntries(dir);
  for (const rel of [...files, ...folders, ""]) utimesSync(join(dir, rel), epoch, epoch);
}

/** The time of the newest commit (SOURCE_DATE_EPOCH when set), for the files' times. */
function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  try {
    return Number(execFileSync("git", ["-C", ROOT, "log", "-1", "--format=%ct"], { encoding: "utf8" }).trim());
  } catch {
    return Math.floor(Date.now() / 1000);
  }
}

/**
 * Builds the package for `arch` into `out` (dist/ by default): compiles the init, bundles the
 * command, lays out the tree and runs dpkg-deb. Returns the .deb's path.
 * @param {{ arch?: string, out?: string }} [options]
 */
export async function buildDeb({ arch = "x86-64", out = DIST } = {}) {
  if (!isArch(arch)) throw new Error(`--arch ${arch}: x86-64 or arm64`);
  requireTool("dpkg-deb");
  const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
  const debArch = archFacts(arch).debian;
  const work = join(WORK, "deb", debArch);
  const tree = join(work, "tree");
  rmSync(work, { recursive: true, force: true });
  const lib = join(tree, LIBDIR);
  mkdirSync(lib, { recursive: true });

  // The init, compiled with the default policy, and its build facts.
  const built = await buildInit({ arch, out: join(work, "init") });
  const initName = distName(arch, "storage-init");
  copyFileSync(built.binary, join(lib, initName));
  copyFileSync(factsPathOf(built.binary), join(lib, `${initName}.json`));

  // The command: one ES module (the .mjs name makes it one to Node through the /usr/bin link).
  await build({
    entryPoints: [join(ROOT, "cli", "run.ts")],
    outfile: join(lib, "command.mjs"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: NODE_TARGET,
    define: { STORAGE_INIT_LIBDIR: JSON.stringify(LIBDIR) },
    banner: { js: "#!/usr/bin/node" },
    legalComments: "none",
    logLevel: "warning",
  });
  mkdirSync(join(tree, "usr", "bin"), { recursive: true });
  symlinkSync(`../lib/storage-init/command.mjs`, join(tree, "usr", "bin", "storage-init"));

  const installD = join(tree, "usr", "lib", "kernel", "install.d");
  mkdirSync(installD, { recursive: true });
  copyFileSync(join(ROOT, "cli", "install.d", "50-storage-init.install"), join(installD, "50-storage-init.install"));

  const doc = join(tree, "usr", "share", "doc", PACKAGE);
  mkdirSync(doc, { recursive: true });
  writeFileSync(join(doc, "README.md.gz"), gzipSync(readFileSync(join(ROOT, "README.md")), { level: 9 }));
  writeFileSync(join(doc, "copyright"), COPYRIGHT);
  const epoch = sourceDateEpoch();
  const date = new Date(epoch * 1000).toUTCString().replace("GMT", "+0000");
  writeFileSync(
    join(doc, "changelog.Debian.gz"),
    gzipSync(
      `${PACKAGE} (${version}) unstable; urgency=medium\n\n  * Built from the source tree by npm run deb.\n\n -- storage-init maintainers <maintainers@users.noreply.r-seed-41fbf1d3.example>  ${date}\n`,
      { level: 9 },
    ),
  );

  // Modes: programs 0755, the rest 0644, folders 0755.
  const programs = new Set([
    `${LIBDIR.slice(1)}/command.mjs`,
    `${LIBDIR.slice(1)}/${initName}`,
    "usr/lib/kernel/install.d/50-storage-init.install",
  ]);
  const { files, folders } = treeEntries(tree);
  for (const f of files) chmodSync(join(tree, f), programs.has(f) ? 0o755 : 0o644);
  for (const d of folders) chmodSync(join(tree, d), 0o755);

  const debian = join(tree, "DEBIAN");
  mkdirSync(debian);
  const md5sums = files.map(
    (f) =>
      `${createHash("md5")
        .update(readFileSync(join(tree, f)))
        .digest("hex")}  ${f}\n`,
  );
  writeFileSync(join(debian, "md5sums"), md5sums.join(""));
  const bytes = files.reduce((n, f) => n + statSync(join(tree, f)).size, 0);
  writeFileSync(join(debian, "control"), control(version, debArch, Math.ceil(bytes / 1024)));
  for (const f of readdirSync(debian)) chmodSync(join(debian, f), 0o644);
  clampTimes(tree, epoch);

  mkdirSync(out, { recursive: true });
  const deb = join(out, `${PACKAGE}_${version}_${debArch}.deb`);
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", tree, deb], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  console.log(
    `deb: -> ${relative(process.cwd(), deb)} ${kib(statSync(deb).size)} (${files.length} files, ${kib(bytes)} installed)`,
  );
  return deb;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--arch");
  try {
    await buildDeb({ arch: i >= 0 ? args[i + 1] : "x86-64" });
  } catch (e) {
    console.error(`deb: ${e.message}`);
    process.exit(1);
  }
}
