// The demo disk: a real Debian root with systemd (debootstrap), as a verity DDI on a vfat ESP,
// laid out like the test disk (qemu/images.ts). Cached under .cache/demo/.
//
// The root carries storage-init's boot counting as the README's recipe installs it
// (cli/storage-init-bless in /usr/lib/storage-init/, its two units enabled), and one unit of
// the demo's own, storage-init-demo.service: once systemd reaches multi-user.target it logs
// ROOT-REACHED with the uptime and /run/storage-init/timings.json to /dev/kmsg, then, once the
// boot has finished, `systemd-analyze time` (ANALYZE lines) and powers the machine off, so that
// `npm start` ends by itself. The DDI lies in a vpick directory with three tries,
// DEMO_DDI_PATH: the booted system counts one down and, its boot complete, marks it good.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_RELEASE } from "../toolchain/debian.mjs";
import { CACHE, requireTool, ROOT, run } from "../toolchain/tools.mjs";
import { buildDiskFromTree } from "./images.ts";

/** Where the demo's DDI lies on the ESP, and the storage_init.ddi= that finds it. */
export const DEMO_DDI_PATH = "/EFI/storage-init/root.v/root_1+3.raw";
export const DEMO_DDI_ARG = "storage_init.ddi=/EFI/storage-init/root.v/";

/** Boot counting in the booted system: the script and its units (README, "Boot counting"). */
/** @type {Array<{ src: string, dest: string, mode: number }>} */
const BLESS = [
  { src: "cli/storage-init-bless", dest: "usr/lib/storage-init/storage-init-bless", mode: 0o755 },
  {
    src: "cli/units/storage-init-count.service",
    dest: "usr/lib/systemd/system/storage-init-count.service",
    mode: 0o644,
  },
  {
    src: "cli/units/storage-init-bless.service",
    dest: "usr/lib/systemd/system/storage-init-bless.service",
    mode: 0o644,
  },
];

/** Bump when the debootstrap command changes. */
export const TREE_FORMAT = 2;

/** What the demo's tree has beyond minbase. */
export const DEMO_PACKAGES = ["systemd", "systemd-sysv", "udev"];

/** The Debian mirror this machine's apt uses (deb822 or one-line sources), for debootstrap. */
export function debianMirror() {
  const files = ["/etc/apt/sources.list"];
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir))
    for (const f of readdirSync(dir)) if (f.endsWith(".sources") || f.endsWith(".list")) files.push(join(dir, f));
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    for (const block of text.split(/\n\s*\n/)) {
      if (/^Suites:.*\bbookworm\b/m.test(block) && /^Components:.*\bmain\b/m.test(block)) {
        const uri = block.match(/^URIs:\s*(\S+)/m);
        if (uri && !/security/.test(uri[1])) return uri[1];
      }
    }
    const line = text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s+.*\bmain\b/m);
    if (line) return line[1];
  }
  throw new Error("no Debian bookworm mirror found in /etc/apt/sources.list*: debootstrap needs one");
}

const DEMO_UNIT = `[Unit]
Description=storage-init demo: report, then power off once the boot has finished
After=multi-user.target
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "<5>ROOT-REACHED uptime=$(cut -d" " -f1 /proc/uptime) init=$(readlink /proc/1/exe)" > /dev/kmsg; echo "<5>TIMINGS $(cat /run/storage-init/timings.json)" > /dev/kmsg'
ExecStart=/usr/bin/systemd-run --no-block --unit=storage-init-demo-analyze --property=DefaultDependencies=no /usr/local/sbin/storage-init-demo-analyze

[Install]
WantedBy=multi-user.target
`;

/**
 * Run outside the boot transaction: systemd-analyze answers only once the boot has finished,
 * which it cannot while a unit of the boot waits for it.
 */
export const ANALYZE_SCRIPT = `#!/bin/sh
for i in $(seq 100); do
  systemd-analyze time > /run/analyze.txt 2>&1 && break
  sleep 0.2
done
sed 's/^/<5>ANALYZE /' /run/analyze.txt > /dev/kmsg
echo "<5>ANALYZE-INITRD-USEC $(systemctl show -P InitRDTimestampMonotonic) $(systemctl show -P UserspaceTimestampMonotonic)" > /dev/kmsg
systemctl poweroff
`;

/**
 * The demo's Debian tree of `release` (toolchain/debian.mjs DEBIAN_RELEASES; debootstrap
 * minbase + systemd, systemd-sysv, udev; an empty machine-id; no apt cache or lists), made
 * once under .cache/demo/tree-<release>-<TREE_FORMAT>. The demo adds its units to it in place;
 * others copy it.
 */
export function demoTree(release = DEFAULT_RELEASE) {
  const dir = join(CACHE, "demo");
  const tree = join(dir, `tree-${release}-${TREE_FORMAT}`);
  const complete = `${tree}.complete`;
  if (existsSync(complete)) return tree;
  requireTool("debootstrap");
  mkdirSync(dir, { recursive: true });
  rmSync(tree, { recursive: true, force: true });
  const mirror = debianMirror();
  console.log(`demo: debootstrap ${release} (minbase + systemd + udev), about a minute`);
  const t0 = performance.now();
  run("debootstrap", ["--variant=minbase", `--include=${DEMO_PACKAGES.join(",")}`, release, tree, mirror]);
  console.log(`demo: debootstrap done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  finishDemoTree(tree);
  writeFileSync(complete, "");
  return tree;
}

/**
 * What the demo's tree is given once debootstrapped: an empty machine-id (a read-only root:
 * systemd makes a transient one), its host name, no apt cache or lists.
 */
export function finishDemoTree(tree) {
  writeFileSync(join(tree, "etc", "machine-id"), "");
  writeFileSync(join(tree, "etc", "hostname"), "storage-init-demo\n");
  for (const d of ["var/cache/apt/archives", "var/lib/apt/lists"])
    rmSync(join(tree, d), { recursive: true, force: true });
}

/**
 * Builds (or reuses) the systemd demo disk of Debian `release` for `arch` (a foreign
 * architecture's tree is made by qemu/foreign_root.ts). Returns { disk, ddi, rootHash }.
 * @param {string} [release]
 * @param {import("../toolchain/arches.ts").Arch} [arch]
 */
export async function buildDemoDisk(release = DEFAULT_RELEASE, arch = "x86-64") {
  const dir = join(CACHE, "demo");
  const key = createHash("sha256")
    .update(
      release +
        arch +
        TREE_FORMAT +
        DEMO_UNIT +
        ANALYZE_SCRIPT +
        BLESS.map((b) => readFileSync(join(ROOT, b.src), "utf8")).join(""),
    )
    .digest("hex")
    .slice(0, 12);
  const image = join(dir, `image-${key}`);
  const meta = join(dir, `disk-${key}.json`);
  // Only the root hash is read back: the files are the image folder's, whatever path the cache
  // was reached through when it was written.
  const result = (rootHash) => ({ disk: join(image, "disk.img"), ddi: join(image, "root.raw"), rootHash });
  if (existsSync(meta)) return result(JSON.parse(readFileSync(meta, "utf8")).rootHash);
  const tree =
    arch === "x86-64" ? demoTree(release) : await (await import("./foreign_root.ts")).foreignDemoTree(release, arch);
  const units = join(tree, "etc", "systemd", "system");
  writeFileSync(join(units, "storage-init-demo.service"), DEMO_UNIT);
  mkdirSync(join(tree, "usr", "local", "sbin"), { recursive: true });
  writeFileSync(join(tree, "usr", "local", "sbin", "storage-init-demo-analyze"), ANALYZE_SCRIPT, { mode: 0o755 });
  mkdirSync(join(units, "multi-user.target.wants"), { recursive: true });
  run("ln", [
    "-sfn",
    "/etc/systemd/system/storage-init-demo.service",
    join(units, "multi-user.target.wants", "storage-init-demo.service"),
  ]);
  for (const { src, dest, mode } of BLESS) {
    mkdirSync(join(tree, dest, ".."), { recursive: true });
    writeFileSync(join(tree, dest), readFileSync(join(ROOT, src)), { mode });
  }
  for (const [target, unit] of [
    ["sysinit.target.wants", "storage-init-count.service"],
    ["basic.target.wants", "storage-init-bless.service"],
  ]) {
    mkdirSync(join(units, target), { recursive: true });
    run("ln", ["-sfn", `/usr/lib/systemd/system/${unit}`, join(units, target, unit)]);
  }
  // storage-init already set up dm-verity for the root. systemd's veritysetup generator sees the
  // same roothash= and would wait for the DDI's partitions by PARTUUID, which exist only inside
  // storage-init's loop devices: the root image masks it, as an image built for storage-init does.
  run("ln", ["-sfn", "/dev/null", join(units, "systemd-veritysetup@root.service")]);
  const r = await buildDiskFromTree(tree, image, { compress: true, arch });
  writeFileSync(meta, JSON.stringify({ rootHash: r.rootHash }, null, 2));
  return result(r.rootHash);
}
