// cli/install.d/50-storage-init.install under this machine's kernel-install (systemd's, run as
// Debian installs a kernel), against a scratch configuration and boot folder, with Debian's
// kernel as the kernel installed: its modules appear at /usr/lib/modules/<release> in a mount
// namespace of the test's own (an overlay of /usr/lib; the machine's tree is not touched).
// tests/toolchain/deb.test.ts boots what the installed package writes.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initramfsPath } from "../toolchain/init_image.mjs";
import { DIST, ROOT } from "../toolchain/tools.mjs";
import { consoleArgs } from "../qemu/boot.js";
import { fetchKernel } from "../qemu/kernel.mjs";
import { inTempDir, isProtoInitrd, testIfBuilt } from "./helpers.js";

const PLUGIN = join(ROOT, "cli", "install.d", "50-storage-init.install");
const LOADER_ENTRY = "/usr/lib/kernel/install.d/90-loaderentry.install";
const MACHINE_ID = "5eced0e5c0de4b1d9f0e000000000001";

const built = testIfBuilt(initramfsPath(DIST, "x86-64", ["all"]), "node build.mjs tests");

/** A folder on PATH whose `storage-init` is the source tree's command. */
function commandDir(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(join(ROOT, "bin", "storage-init.mjs"), join(bin, "storage-init"));
  return bin;
}

/** kernel-install's configuration in `dir`/etc/kernel: install.conf's lines, and the entry's command line. */
function kernelConf(dir: string, installConf: string, cmdline: string, storageConf?: string): string {
  const conf = join(dir, "etc", "kernel");
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, "install.conf"), installConf);
  writeFileSync(join(conf, "cmdline"), cmdline + "\n");
  if (storageConf !== undefined) writeFileSync(join(conf, "storage-init.conf"), storageConf);
  return conf;
}

/**
 * `kernel-install add` of Debian's kernel with our plugin and 90-loaderentry.install, in a mount
 * namespace where /usr/lib/modules holds that kernel's modules. Returns its status and output.
 */
function kernelInstall(dir: string, conf: string): { status: number | null; out: string; release: string } {
  const k = fetchKernel("x86-64");
  const lower = join(dir, "lower");
  mkdirSync(join(lower, "modules"), { recursive: true });
  symlinkSync(k.modulesDir, join(lower, "modules", k.version));
  const script = `mount -t overlay overlay -o lowerdir=${lower}:/usr/lib /usr/lib && exec kernel-install --verbose add ${k.version} ${k.vmlinuz}`;
  const r = spawnSync("unshare", ["--mount", "sh", "-c", script], {
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: `${commandDir(dir)}:${process.env.PATH}`,
      KERNEL_INSTALL_CONF_ROOT: conf,
      KERNEL_INSTALL_PLUGINS: `${PLUGIN} ${LOADER_ENTRY}`,
      BOOT_ROOT: join(dir, "boot"),
      MACHINE_ID,
    },
  });
  return { status: r.status, out: r.stdout + r.stderr, release: k.version };
}

built(
  "50-storage-init.install: kernel-install add writes the proto-initrd of the kernel installed into its loader entry",
  (t) => {
    inTempDir((dir) => {
      const hash = "ab".repeat(32);
      const conf = kernelConf(
        dir,
        "layout=bls\ninitrd_generator=storage-init\n",
        `${consoleArgs()} roothash=${hash}`,
        "STORAGE=virtio\n",
      );
      const r = kernelInstall(dir, conf);
      t.is(r.status, 0, r.out);
      t.regex(r.out, new RegExp(`storage-init: the proto-initrd for ${r.release} \\(virtio\\)`));
      const entryDir = join(dir, "boot", MACHINE_ID, r.release);
      t.deepEqual(readdirSync(entryDir).sort(), ["initrd", "linux"]);
      const entries = join(dir, "boot", "loader", "entries");
      const text = readFileSync(join(entries, `${MACHINE_ID}-${r.release}.conf`), "utf8");
      t.regex(text, new RegExp(`^initrd\\s+\\S*/${MACHINE_ID}/${r.release}/initrd$`, "m"));
      t.regex(text, new RegExp(`^options\\s+.*roothash=${hash}`, "m"));
      isProtoInitrd(t, readFileSync(join(entryDir, "initrd")), join(DIST, "storage-init"));
    });
  },
);

built(
  "50-storage-init.install writes nothing unless storage-init is the initrd generator, or when initrds are given",
  (t) => {
    inTempDir((dir) => {
      const staging = join(dir, "staging");
      mkdirSync(staging);
      const path = `${commandDir(dir)}:${process.env.PATH}`;
      const plugin = (generator: string | undefined, ...args: string[]) =>
        spawnSync(PLUGIN, ["add", "6.1.0-test", join(dir, "boot"), "/boot/vmlinuz-6.1.0-test", ...args], {
          encoding: "utf8",
          env: {
            ...process.env,
            PATH: path,
            KERNEL_INSTALL_STAGING_AREA: staging,
            ...(generator === undefined ? {} : { KERNEL_INSTALL_INITRD_GENERATOR: generator }),
          },
        });
      t.is(plugin(undefined).status, 0);
      t.is(plugin("dracut").status, 0);
      t.is(plugin("storage-init", "/boot/initrd.img-6.1.0-test").status, 0);
      t.deepEqual(readdirSync(staging), [], "no initrd written");
      // Chosen, for a kernel whose modules are not installed: the command's own line, and a failure.
      const r = plugin("storage-init");
      t.is(r.status, 1);
      t.regex(
        r.stderr,
        /storage-init build: --kernel-version 6\.1\.0-test: no \/usr\/lib\/modules\/6\.1\.0-test or \/lib\/modules\/6\.1\.0-test/,
      );
      t.false(existsSync(join(staging, "initrd")));
    });
  },
);
