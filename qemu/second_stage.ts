// A second stage and the root it switches into, from Debian bookworm's packages, cached under
// .cache/second-stage/ by the content of their inputs:
//
//   second stage  a systemd initrd as a DDI (buildDiskFromTree: erofs, lz4hc + dm-verity):
//                 debootstrap minbase + SECOND_STAGE_PACKAGES, docs, man pages and locales
//                 pruned; /etc/initrd-release a link to os-release, an empty /etc/machine-id,
//                 /sysroot; the modules of the kernel the tests boot that the real root needs
//                 (SECOND_STAGE_MODULES and what they depend on, depmod'ed); no unit enabled
//                 by the packages; systemd-veritysetup@root masked, roothash= being
//                 storage-init's. storage-init mounts it under a tmpfs overlay and executes its
//                 systemd, which runs initrd.target, mounts root= on /sysroot and switches.
//   final root    a plain ext4 image (mkfs.ext4 -d: no root privileges, no device-mapper) of the
//                 demo's Debian tree (qemu/demo_root.mjs demoTree) with one unit: once
//                 multi-user.target is reached it logs FINAL-ROOT-REACHED, storage-init's
//                 timings.json (handed through both switches in /run), the block devices and
//                 how many loop devices are bound (BLOCK-DEVICES) to /dev/kmsg, then
//                 `systemd-analyze time` (ANALYZE lines), and powers off.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { readKernelModules } from "../toolchain/init_image.mjs";
import { resolveModule } from "../toolchain/module_closure.ts";
import { CACHE, requireTool, ROOT, run } from "../toolchain/tools.mjs";
import { ANALYZE_SCRIPT, debianMirror, demoTree } from "./demo_root.mjs";
import { buildDiskFromTree } from "./images.ts";
import { fetchKernel } from "./kernel.mjs";

/**
 * The second stage's packages beyond minbase: systemd as the initrd's init, udev and kmod for
 * the devices and their modules, and what unlocking and activating the real root will take
 * (device-mapper, LVM, LUKS2 with systemd-cryptsetup's TPM2 token, e2fsprogs for fsck).
 */
export const SECOND_STAGE_PACKAGES = [
  "systemd",
  "systemd-sysv",
  "udev",
  "kmod",
  "dmsetup",
  "lvm2",
  "libcryptsetup12",
  "cryptsetup-bin",
  "libtss2-esys-3.0.2-0",
  "libtss2-mu0",
  "libtss2-rc0",
  "libtss2-tcti-device0",
  "e2fsprogs",
];

/**
 * The modules the second stage may load for the real root, with what modules.dep and the
 * pre-softdeps add: the disk, its file system, device-mapper and dm-crypt with the cipher, the
 * overlay it runs under, efivarfs (systemd-pcrphase's condition reads an EFI variable), autofs4
 * (systemd's automount units).
 */
export const SECOND_STAGE_MODULES = [
  "virtio_pci",
  "virtio_blk",
  "virtio_scsi",
  "sd_mod",
  "nvme",
  "ahci",
  "ext4",
  "dm_mod",
  "dm_crypt",
  "dm_verity",
  "xts",
  "aesni_intel",
  "overlay",
  "erofs",
  "loop",
  "efivarfs",
  "autofs4",
  "vfat",
  "nls_cp437",
  "nls_ascii",
];

/** What the second stage's udev keeps across the switch (mkosi-initrd's 10-mkosi-initrd-dm.rules, dracut's 11-dm.rules). */
const DM_DB_PERSIST = `# The device-mapper flags of this initrd's devices must survive into the booted system
# (55-dm.rules reads them back there); initrd-udevadm-cleanup-db keeps what is marked db_persist.
SUBSYSTEM!="block", GOTO="dm_end"
KERNEL!="dm-[0-9]*", GOTO="dm_end"
ACTION!="add|change", GOTO="dm_end"
OPTIONS+="db_persist"
LABEL="dm_end"
`;

/** What the second stage drops from the debootstrap tree: documentation, the apt cache and lists. */
const PRUNED = [
  "usr/share/doc",
  "usr/share/man",
  "usr/share/info",
  "usr/share/locale",
  "usr/share/lintian",
  "usr/share/bash-completion",
  "var/cache/apt",
  "var/lib/apt/lists",
  "var/cache/debconf/templates.dat-old",
  "var/log",
];

/** The final root's unit: the marker line, then the analysis (outside the boot transaction: see ANALYZE_SCRIPT) and poweroff. */
const FINAL_UNIT = `[Unit]
Description=storage-init test: the final root reached, report and power off
After=multi-user.target
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "<5>FINAL-ROOT-REACHED uptime=$(cut -d" " -f1 /proc/uptime) root=$(findmnt -no SOURCE,FSTYPE /)" > /dev/kmsg; echo "<5>TIMINGS $(cat /run/storage-init/timings.json)" > /dev/kmsg; echo "<5>BLOCK-DEVICES $(cd /sys/block && echo *) LOOPS-BOUND $(cat /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l)" > /dev/kmsg'
ExecStart=/usr/bin/systemd-run --no-block --unit=final-root-analyze --property=DefaultDependencies=no /usr/local/sbin/final-root-analyze

[Install]
WantedBy=multi-user.target
`;

/**
 * An early unit of the final root (wanted by sysinit.target, without its default dependencies):
 * the memory in use soon after its systemd starts (MemTotal and MemAvailable; Buffers, Cached
 * and Shmem for the page cache and tmpfs), for the comparison with a conventional initrd
 * (qemu/compare.mjs).
 */
const START_UNIT = `[Unit]
Description=storage-init test: the memory in use as the root's systemd starts
DefaultDependencies=no
Before=sysinit.target local-fs-pre.target systemd-udevd.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/final-root-start

[Install]
WantedBy=sysinit.target
`;

const START_SCRIPT = `#!/bin/sh
echo "<5>ROOT-START-MEMORY $(grep -E '^(MemTotal|MemAvailable|Buffers|Cached|Shmem):' /proc/meminfo | tr -s ' ' | tr '\\n' ' ')" > /dev/kmsg
`;

/** What the demo adds to its tree in place (qemu/demo_root.mjs): not part of the final root. */
const DEMO_ADDITIONS = [
  "etc/systemd/system/storage-init-demo.service",
  "etc/systemd/system/multi-user.target.wants/storage-init-demo.service",
  "etc/systemd/system/sysinit.target.wants/storage-init-count.service",
  "etc/systemd/system/basic.target.wants/storage-init-bless.service",
  "usr/local/sbin/storage-init-demo-analyze",
  "usr/lib/storage-init",
  "usr/lib/systemd/system/storage-init-count.service",
  "usr/lib/systemd/system/storage-init-bless.service",
];

/** The final root's file-system UUID (fixed, so that its image is the same from the same tree). */
export const FINAL_ROOT_UUID = "f1a1f1a1-0000-4000-8000-00000000f1a1";

/** Bump when the debootstrap or the pruning changes. */
const TREE_FORMAT = 1;

/** A short key of `parts`: the cache keys of the second stage's images and of what is built from them. */
export function keyOf(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(`${p}\0`);
  return h.digest("hex").slice(0, 12);
}

/** The sources of the builders (this file, and images.ts for the DDI), part of every cache key. */
function builderSources(): string {
  return ["qemu/second_stage.ts", "qemu/images.ts", "qemu/demo_root.mjs"]
    .map((f) => readFileSync(join(ROOT, f), "utf8"))
    .join("\0");
}

/** Runs fn, logging how long it took. */
function timed<T>(what: string, fn: () => T): T {
  const t0 = performance.now();
  const r = fn();
  console.log(`second stage: ${what} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/**
 * The second stage's Debian tree, pruned, made once under .cache/second-stage/tree-<key>. The
 * key covers the packages and the pruning; the tree is copied before anything is added to it.
 */
export function secondStageTree(): string {
  const dir = join(CACHE, "second-stage");
  const tree = join(dir, `tree-${keyOf(String(TREE_FORMAT), ...SECOND_STAGE_PACKAGES, ...PRUNED)}`);
  if (existsSync(`${tree}.complete`)) return tree;
  requireTool("debootstrap");
  mkdirSync(dir, { recursive: true });
  rmSync(tree, { recursive: true, force: true });
  const mirror = debianMirror();
  console.log("second stage: debootstrap bookworm (minbase + systemd, udev, lvm2, cryptsetup, tss2), about a minute");
  timed("debootstrap", () =>
    run("debootstrap", ["--variant=minbase", `--include=${SECOND_STAGE_PACKAGES.join(",")}`, "bookworm", tree, mirror]),
  );
  for (const d of PRUNED) rmSync(join(tree, d), { recursive: true, force: true });
  mkdirSync(join(tree, "var", "log"));
  writeFileSync(`${tree}.complete`, "");
  return tree;
}

/** Copies the tree `src` to `dst` (ownership, modes, links kept). */
export function copyTree(src: string, dst: string): void {
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(dirname(dst), { recursive: true });
  run("cp", ["-a", "--reflink=auto", src, dst]);
}

/**
 * The tree `tree` as a newc cpio archive `out`, an initramfs for a provisioning boot: every kind
 * of file the tree holds (links, device nodes), as cpio(1) writes them.
 */
export function treeCpio(tree: string, out: string): void {
  requireTool("cpio");
  run("sh", ["-c", 'cd "$1" && find . -print0 | cpio --null -o -H newc --quiet > "$2"', "sh", tree, out]);
}

/**
 * Copies the modules `names` of the kernel in `modulesDir` and what they depend on into `tree`,
 * with the kernel's module lists, and runs depmod there. Returns the module names copied.
 */
export function copyModules(tree: string, modulesDir: string, version: string, names: string[]): string[] {
  requireTool("depmod");
  const idx = readKernelModules(modulesDir);
  const want = new Set<string>();
  for (const n of names) {
    const m = resolveModule(idx, n);
    if (m === undefined) throw new Error(`module ${n} is not in kernel ${version}`);
    if (idx.builtin.has(m)) continue;
    want.add(m);
    for (const d of idx.deps.get(m) ?? []) want.add(d);
  }
  const out = join(tree, "lib", "modules", version);
  rmSync(join(tree, "lib", "modules"), { recursive: true, force: true });
  for (const m of want) {
    const path = idx.paths.get(m);
    if (path === undefined) continue;
    mkdirSync(dirname(join(out, path)), { recursive: true });
    writeFileSync(join(out, path), readFileSync(join(modulesDir, path)));
  }
  for (const f of ["modules.builtin", "modules.builtin.modinfo", "modules.order"])
    if (existsSync(join(modulesDir, f))) writeFileSync(join(out, f), readFileSync(join(modulesDir, f)));
  run("depmod", ["-b", tree, version]);
  return [...want].sort();
}

/** The links in `tree`'s /etc/systemd/system/*.wants: what the packages' postinsts enabled. */
function enabledUnits(tree: string): string[] {
  const units = join(tree, "etc", "systemd", "system");
  if (!existsSync(units)) return [];
  return readdirSync(units)
    .filter((d) => d.endsWith(".wants") || d.endsWith(".requires"))
    .flatMap((d) => readdirSync(join(units, d)).map((u) => join(units, d, u)));
}

/** The second stage as built: its DDI, root hash and the facts the report gives. */
export interface SecondStage {
  ddi: string;
  rootHash: string;
  /** The DDI's size in bytes. */
  bytes: number;
  /** The kernel release whose modules it holds. */
  kernel: string;
  modules: string[];
}

/** Builds (or reuses) the second stage's DDI for the kernel the tests boot. */
export async function buildSecondStage(): Promise<SecondStage> {
  const kernel = fetchKernel("x86-64");
  const tree = secondStageTree();
  const image = join(CACHE, "second-stage", `ddi-${keyOf(basename(tree), kernel.version, builderSources())}`);
  const meta = join(image, "second-stage.json");
  if (existsSync(meta)) {
    const facts = JSON.parse(readFileSync(meta, "utf8")) as Omit<SecondStage, "ddi">;
    return { ...facts, ddi: join(image, "root.raw") };
  }
  const work = `${image}.tree`;
  const t0 = performance.now();
  copyTree(tree, work);
  const modules = copyModules(work, kernel.modulesDir, kernel.version, SECOND_STAGE_MODULES);
  const etc = join(work, "etc");
  // systemd's in_initrd(): the file exists; systemd-dissect and storage-init: it is not empty.
  rmSync(join(etc, "initrd-release"), { force: true });
  run("ln", ["-s", "os-release", join(etc, "initrd-release")]);
  writeFileSync(join(etc, "machine-id"), "");
  writeFileSync(join(etc, "hostname"), "storage-init-second-stage\n");
  mkdirSync(join(work, "sysroot"), { recursive: true });
  // Nothing the packages enabled for a booted system runs in the initrd (mkosi-initrd's preset
  // is "disable *"): lvm2-monitor, blk-availability, lvm2-lvmpolld.socket, dm-event.socket, ...
  for (const link of enabledUnits(work)) rmSync(link);
  // storage-init set up dm-verity for this image from roothash=; systemd's veritysetup
  // generator would wait for the image's partitions by PARTUUID, which only storage-init's
  // loop devices have.
  run("ln", ["-sfn", "/dev/null", join(etc, "systemd", "system", "systemd-veritysetup@root.service")]);
  mkdirSync(join(etc, "udev", "rules.d"), { recursive: true });
  writeFileSync(join(etc, "udev", "rules.d", "10-dm-db-persist.rules"), DM_DB_PERSIST);
  const disk = await buildDiskFromTree(work, image, { compress: true });
  rmSync(work, { recursive: true, force: true });
  const facts = { rootHash: disk.rootHash, bytes: statSync(disk.ddi).size, kernel: kernel.version, modules };
  writeFileSync(meta, JSON.stringify(facts, null, 2));
  console.log(
    `second stage: DDI of ${(facts.bytes / 2 ** 20).toFixed(1)} MiB built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return { ...facts, ddi: disk.ddi };
}

/** Builds (or reuses) the final root: an ext4 image of the demo's Debian tree with FINAL_UNIT. Returns its file. */
export function buildFinalRoot(): string {
  requireTool("mkfs.ext4");
  const tree = demoTree();
  const dir = join(CACHE, "second-stage");
  const image = join(dir, `final-root-${keyOf(basename(tree), builderSources())}.ext4`);
  if (existsSync(image)) return image;
  const work = `${image}.tree`;
  copyTree(tree, work);
  for (const p of DEMO_ADDITIONS) rmSync(join(work, p), { recursive: true, force: true });
  const units = join(work, "etc", "systemd", "system");
  writeFileSync(join(units, "final-root.service"), FINAL_UNIT);
  mkdirSync(join(units, "multi-user.target.wants"), { recursive: true });
  run("ln", ["-sfn", "/etc/systemd/system/final-root.service", join(units, "multi-user.target.wants")]);
  mkdirSync(join(work, "usr", "local", "sbin"), { recursive: true });
  writeFileSync(join(work, "usr", "local", "sbin", "final-root-analyze"), ANALYZE_SCRIPT, { mode: 0o755 });
  writeFileSync(join(units, "final-root-start.service"), START_UNIT);
  writeFileSync(join(work, "usr", "local", "sbin", "final-root-start"), START_SCRIPT, { mode: 0o755 });
  mkdirSync(join(units, "sysinit.target.wants"), { recursive: true });
  run("ln", ["-sfn", "/etc/systemd/system/final-root-start.service", join(units, "sysinit.target.wants")]);
  // roothash= is on the command line for storage-init; this root is not the DDI it pins.
  run("ln", ["-sfn", "/dev/null", join(units, "systemd-veritysetup@root.service")]);
  writeFileSync(join(work, "etc", "hostname"), "storage-init-final-root\n");
  writeFileSync(join(work, "etc", "machine-id"), "");
  const tmp = `${image}.tmp`;
  rmSync(tmp, { force: true });
  timed("mkfs.ext4 -d of the final root", () =>
    run("mkfs.ext4", ["-q", "-F", "-L", "final-root", "-U", FINAL_ROOT_UUID, "-d", work, tmp, "1G"]),
  );
  rmSync(work, { recursive: true, force: true });
  renameSync(tmp, image);
  return image;
}
