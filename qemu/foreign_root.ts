// The demo's Debian tree for a foreign architecture (arm64), made without binfmt_misc:
// debootstrap --foreign unpacks the packages here, and its second stage, which runs the
// packages' own programs, runs in a VM of that architecture. Debian's kernel boots the tree as
// its initramfs (rdinit=/provision); the script runs `debootstrap --second-stage`, then writes
// the finished tree as a tar stream onto a blank disk, which is unpacked here. Cached under
// .cache/demo/tree-<release>-<arch>-<format>, like the x86-64 tree (demo_root.mjs demoTree).
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { archFacts } from "../toolchain/arches.ts";
import { CACHE, requireTool, run } from "../toolchain/tools.mjs";
import { bootQemu } from "./boot.ts";
import { debianMirror, DEMO_PACKAGES, finishDemoTree, TREE_FORMAT } from "./demo_root.mjs";
import { fetchKernel } from "./kernel.mjs";
import { copyModules, treeCpio } from "./second_stage.ts";

/** The provisioning boot's script: the second stage, then the tree onto /dev/vda as tar. */
const PROVISION = `#!/bin/sh
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "<5>PROVISION $*" > /dev/kmsg; }
trap 'say FAILED; echo o > /proc/sysrq-trigger' EXIT
/debootstrap/debootstrap --second-stage
say "SECOND STAGE DONE"
modprobe -a virtio_pci virtio_blk
for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
rm -rf /lib/modules /provision
tar -C / --one-file-system --numeric-owner -cf /dev/vda .
sync
say DONE
trap - EXIT
echo o > /proc/sysrq-trigger
`;

/** The size of the blank disk the tree is written onto. */
const OUT_BYTES = 2 * 2 ** 30;

/** The demo tree of `release` for `arch`, debootstrapped in two stages (the second in a VM). */
export async function foreignDemoTree(release: string, arch: string): Promise<string> {
  const a = archFacts(arch);
  const dir = join(CACHE, "demo");
  const tree = join(dir, `tree-${release}-${a.debian}-${TREE_FORMAT}`);
  if (existsSync(`${tree}.complete`)) return tree;
  requireTool("debootstrap");
  requireTool("cpio");
  const work = `${tree}.work`;
  rmSync(work, { recursive: true, force: true });
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const t0 = performance.now();
  const first = join(work, "first");
  console.log(`demo: debootstrap --foreign ${release} for ${a.debian} (the second stage in a VM, several minutes)`);
  run("debootstrap", [
    "--foreign",
    `--arch=${a.debian}`,
    "--variant=minbase",
    `--include=${[...DEMO_PACKAGES, "kmod"].join(",")}`,
    release,
    first,
    debianMirror(),
  ]);
  // The first stage leaves /proc a link to the host's, for a chroot; the VM mounts its own.
  rmSync(join(first, "proc"), { force: true });
  mkdirSync(join(first, "proc"));
  const kernel = fetchKernel(arch);
  copyModules(first, kernel.modulesDir, kernel.version, ["virtio_pci", "virtio_blk"]);
  writeFileSync(join(first, "provision"), PROVISION, { mode: 0o755 });
  const cpio = join(work, "first.cpio");
  treeCpio(first, cpio);
  rmSync(first, { recursive: true, force: true });
  const out = join(work, "tree.tar");
  writeFileSync(out, "");
  run("truncate", ["-s", String(OUT_BYTES), out]);
  const r = await bootQemu({
    arch: arch as "arm64",
    kernel: kernel.vmlinuz,
    initrd: cpio,
    append: "rdinit=/provision",
    memory: 2048,
    drives: [{ file: out, if: "virtio", readonly: false }],
    timeoutMs: 1800000,
  });
  if (!/PROVISION DONE/.test(r.output))
    throw new Error(`the second stage's boot did not finish:\n${r.output.slice(-4000)}`);
  const unpacked = join(work, "tree");
  mkdirSync(unpacked);
  run("tar", ["-x", "--numeric-owner", "-f", out, "-C", unpacked]);
  finishDemoTree(unpacked);
  renameSync(unpacked, tree);
  rmSync(work, { recursive: true, force: true });
  writeFileSync(`${tree}.complete`, "");
  console.log(`demo: ${release} for ${a.debian} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return tree;
}
