// `npm run deb` (toolchain/deb.mjs): the package's contents and control file, then the package
// installed as a user installs it, `apt install ./storage-init_*.deb`, into a Debian 12 and a
// Debian 13 root (qemu/debian_root.ts, chrooted), and `kernel-install add` run there for
// Debian's kernel with storage-init as the initrd generator: on Debian 12 (systemd 252) a loader
// entry with the proto-initrd, on Debian 13 (systemd 257, ukify) a UKI. Each is booted: the
// entry's kernel, initrd and options directly, the UKI by OVMF from an ESP with the DDI.
import test from "ava";
import type { ExecutionContext } from "ava";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { DEFAULT_DDI_PATH } from "../../lib/facts.js";
import { buildDeb, LIBDIR } from "../../toolchain/deb.mjs";
import { run, WORK } from "../../toolchain/tools.mjs";
import { readSection } from "../../toolchain/uki.mjs";
import { bootQemu, consoleArgs } from "../../qemu/boot.js";
import { debianRoot, inChroot } from "../../qemu/debian_root.js";
import type { DebianRelease } from "../../qemu/debian_root.js";
import { buildDisk, buildEspDisk } from "../../qemu/images.js";
import type { TestDisk } from "../../qemu/images.js";
import { fetchKernel } from "../../qemu/kernel.mjs";
import { copyTree } from "../../qemu/second_stage.js";
import { espFiles, firmware } from "../../qemu/uefi.mjs";
import { literally } from "../cases.js";
import { isProtoInitrd } from "../helpers.js";
import { reachedRoot } from "../scenario.js";

/** What a user's system has before the package: systemd (kernel-install), and on 13 ukify. */
const ROOTS: Record<DebianRelease, { packages: string[]; layout: "bls" | "uki" }> = {
  bookworm: { packages: ["systemd", "nodejs", "binutils", "systemd-boot-efi"], layout: "bls" },
  trixie: { packages: ["systemd", "nodejs", "binutils", "systemd-boot-efi", "systemd-ukify"], layout: "uki" },
};

const MACHINE_ID = "5eced0e5c0de4b1d9f0e000000000002";
const ESP_PART_UUID = "de5de5de-0000-4000-8000-00000000de50";

let deb: Promise<string> | undefined;
/** The package, built once for the tests of this file. */
function theDeb(): Promise<string> {
  deb ??= buildDeb({ out: join(WORK, "deb", "out") });
  return deb;
}

test("npm run deb: the init for its architecture, the command, the kernel-install plugin, the README; Debian's control fields", async (t) => {
  const file = await theDeb();
  t.is(basename(file), `storage-init_${JSON.parse(readFileSync("package.json", "utf8")).version}_amd64.deb`);
  const fields = run("dpkg-deb", ["--field", file]);
  t.regex(fields, /^Package: storage-init$/m);
  t.regex(fields, /^Architecture: amd64$/m);
  t.regex(fields, /^Depends: nodejs \(>= 18\), xz-utils$/m);
  t.regex(fields, /^Installed-Size: \d+$/m);
  const contents = run("dpkg-deb", ["--contents", file]);
  for (const [mode, path] of [
    ["-rwxr-xr-x", `.${LIBDIR}/storage-init`],
    ["-rw-r--r--", `.${LIBDIR}/storage-init.json`],
    ["-rwxr-xr-x", `.${LIBDIR}/command.mjs`],
    ["-rwxr-xr-x", "./usr/lib/kernel/install.d/50-storage-init.install"],
    ["-rw-r--r--", "./usr/share/doc/storage-init/README.md.gz"],
    ["-rw-r--r--", "./usr/share/doc/storage-init/copyright"],
    ["-rw-r--r--", "./usr/share/doc/storage-init/changelog.Debian.gz"],
  ])
    t.regex(contents, new RegExp(`^${mode} root/root .* ${path.replace(/[.]/g, "\\.")}$`, "m"), path);
  t.regex(contents, /^lrwxrwxrwx root\/root .* \.\/usr\/bin\/storage-init -> \.\.\/lib\/storage-init\/command\.mjs$/m);
  t.false(contents.includes("node_modules"), "the command is one bundle");
});

/**
 * The kernel of `release` installed into `tree` as its package installs it: the modules and
 * /boot/vmlinuz-<release>. Debian 13's, 6.12, has its modules xz-compressed.
 */
function installKernel(tree: string, release: DebianRelease): string {
  const k = fetchKernel("x86-64", release);
  copyTree(k.modulesDir, join(tree, "usr", "lib", "modules", k.version));
  copyFileSync(k.vmlinuz, join(tree, "boot", `vmlinuz-${k.version}`));
  return k.version;
}

/**
 * A fresh copy of the `release` root with the package installed by apt and Debian's kernel
 * added by kernel-install, configured for storage-init to pin `disk`'s root hash. Returns the
 * tree, the release and kernel-install's output.
 */
async function installed(t: ExecutionContext, release: DebianRelease, disk: TestDisk) {
  const file = await theDeb();
  const tree = join(WORK, "deb", release);
  copyTree(debianRoot(release, ROOTS[release].packages), tree);
  copyFileSync(file, join(tree, "tmp", basename(file)));
  const apt = inChroot(tree, ["apt-get", "install", "-y", `/tmp/${basename(file)}`], {
    DEBIAN_FRONTEND: "noninteractive",
  });
  t.regex(apt, /Setting up storage-init \(/);
  t.regex(
    inChroot(tree, ["storage-init", "--help"]),
    /usage: storage-init COMMAND/,
    "Debian's nodejs runs the command",
  );
  const conf = join(tree, "etc", "kernel");
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, "install.conf"), `layout=${ROOTS[release].layout}\ninitrd_generator=storage-init\n`);
  writeFileSync(join(conf, "storage-init.conf"), "STORAGE=virtio\n");
  writeFileSync(join(conf, "cmdline"), `${consoleArgs()} roothash=${disk.rootHash}\n`);
  mkdirSync(join(tree, "boot", "efi"), { recursive: true });
  const version = installKernel(tree, release);
  const out = inChroot(tree, ["kernel-install", "--verbose", "add", version, `/boot/vmlinuz-${version}`], {
    BOOT_ROOT: "/boot/efi",
    MACHINE_ID,
  });
  t.true(out.includes(`storage-init: the proto-initrd for ${version} (virtio)`), out);
  return { tree, version, out };
}

test("Debian 12: apt install ./storage-init_*.deb, kernel-install add writes the proto-initrd into the loader entry, and it boots", async (t) => {
  const disk = await buildDisk({});
  const { tree, version } = await installed(t, "bookworm", disk);
  const entryDir = join(tree, "boot", "efi", MACHINE_ID, version);
  t.deepEqual(readdirSync(entryDir).sort(), ["initrd", "linux"]);
  const entry = readFileSync(join(tree, "boot", "efi", "loader", "entries", `${MACHINE_ID}-${version}.conf`), "utf8");
  t.regex(entry, new RegExp(`^initrd\\s+\\S*/${MACHINE_ID}/${literally(version).source}/initrd$`, "m"));
  isProtoInitrd(t, readFileSync(join(entryDir, "initrd")), join(tree, LIBDIR.slice(1), "storage-init"));
  const r = await bootQemu({
    kernel: join(entryDir, "linux"),
    initrd: join(entryDir, "initrd"),
    append: /^options\s+(.*)$/m.exec(entry)?.[1] ?? "",
    drives: [{ file: disk.disk, if: "virtio", readonly: true }],
    timeoutMs: 150000,
  });
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]);
});

test("Debian 13: apt install ./storage-init_*.deb, kernel-install add with layout=uki has ukify build a UKI around the proto-initrd, and OVMF boots it", async (t) => {
  const disk = await buildDisk({});
  const { tree, version, out } = await installed(t, "trixie", disk);
  const linux = join(tree, "boot", "efi", "EFI", "Linux");
  const ukis = existsSync(linux) ? readdirSync(linux) : [];
  t.deepEqual(ukis, [`${MACHINE_ID}-${version}.efi`], out);
  if (ukis.length !== 1) return;
  const uki = join(linux, ukis[0]);
  isProtoInitrd(t, readSection(uki, ".initrd"), join(tree, LIBDIR.slice(1), "storage-init"));
  t.regex(readSection(uki, ".cmdline").toString(), new RegExp(`roothash=${disk.rootHash}`));
  const dir = join(WORK, "deb", "trixie-boot");
  mkdirSync(dir, { recursive: true });
  const esp = buildEspDisk(
    join(dir, "disk.img"),
    espFiles(dir, { uki, bootloader: undefined, shim: undefined, ddi: disk.ddi, ddiPath: DEFAULT_DDI_PATH }),
    { espPartUuid: ESP_PART_UUID },
  );
  const r = await bootQemu({
    firmware: firmware(dir),
    drives: [{ file: esp, if: "virtio", readonly: true }],
    timeoutMs: 150000,
  });
  t.regex(r.output, /Linux version 6\.12\./, "Debian 13's kernel");
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, ["virtio_blk"]);
});
