// End-to-end boots: Debian's kernel, dist/initramfs-all.cpio.gz (built by `node build.mjs tests`
// with every storage class), and test disks made by qemu/images.mjs with the real tools:
//
//   disk.img  GPT (sgdisk)
//   └─ p1  ESP (vfat: mkfs.vfat + mtools), PARTUUID 6b1e7d2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d
//          └─ /EFI/storage-init/root.raw   DDI: GPT
//               ├─ p1 root (x86-64)        erofs of a root whose /sbin/init prints ROOT-REACHED
//               └─ p2 root-verity (x86-64) veritysetup format of p1 (sha256, 4 KiB blocks)
//
// Each case is a disk variant + a drive interface + a kernel command line + the console lines
// expected. Failure cases assert the exact error line and that the configured action happens
// within its bound, never a kernel panic from PID 1 exiting.
// One case by name: node build.mjs tests && npx ava tests/boot.test.ts -m 'boot: NVMe*'
import test from "ava";
import type { ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { createConnection } from "node:net";
import { uuidFromHex } from "../lib/hex.js";
import { phaseIds } from "../runtime/phases.js";
import { cpioArchive, readCpio } from "../toolchain/initramfs.mjs";
import { ROOT } from "../toolchain/tools.mjs";
import { bootQemu } from "../qemu/boot.js";
import type { Drive, DriveInterface } from "../qemu/boot.js";
import { buildDisk, buildEspDisk, buildRepartDdi, certificateFingerprint, testKey } from "../qemu/images.js";
import type { DiskVariant } from "../qemu/images.js";
import { buildUefiDisk, DEMO_ESP_PART_UUID, firmware, secureBootSigner } from "../qemu/uefi.mjs";
import { buildDemoDisk, DEMO_DDI_ARG, DEMO_DDI_PATH } from "../qemu/demo_root.mjs";
import { analyzeInitrd } from "../qemu/timeline.mjs";
import { fetchKernel } from "../qemu/kernel.mjs";
import { ESP_PART_UUID } from "../qemu/test_disk.js";
import { stampedLines } from "../qemu/timeline.mjs";
import { testIfBuilt } from "./helpers.js";

type Boot = { output: string; code: number | null; timedOut: boolean; ms: number };
type Disk = { disk: string; rootHash: string; espPartUuid: string };

const INITRD = join(ROOT, "dist", "initramfs-all.cpio.gz");
const INITRD_ARM64 = join(ROOT, "dist", "initramfs-arm64-all.cpio.gz");
const it = testIfBuilt(INITRD, "node build.mjs tests");
const itArm = testIfBuilt(INITRD_ARM64, "node build.mjs tests");
const kernel = fetchKernel();
/** The arm64 kernel, fetched only where the arm64 initramfs was built. */
const kernelArm64 = itArm === test ? fetchKernel("arm64") : kernel;
/** Every boot, success or failure, must end well within this. */
const BOOT_LIMIT_MS = 150000;

/** A disk variant, for a machine of `arch`, a power of two in size for an SD card. */
type CaseDisk = DiskVariant & { arch?: "x86-64" | "arm64"; sdCard?: boolean };

interface Case {
  arch?: "x86-64" | "arm64";
  disk?: CaseDisk;
  noDisk?: boolean;
  drive?: DriveInterface;
  /** A disk variant attached ahead of the case's disk (on the same interface). */
  before?: CaseDisk;
  append: string;
  initrd?: string;
  extraArgs?: string[];
  onLine?: (line: string) => void;
}

/** At most two QEMUs at a time: the machine has two cores, and TCG is CPU-bound. */
let running = 0;
const waiting: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** The disk variants the cases below boot. */
const DISKS: CaseDisk[] = [
  {},
  { ddiPath: "/images/My OS/root.raw" },
  { corruptPrimaryGpt: true },
  { flipErofsByte: 1030 },
  { flipInitByte: true },
  { omitDdi: true },
  { noEsp: true },
  { hash: "sha512" },
  { hash: "sha1" },
  { lowerVerityDataBlocks: 1 },
  { arch: "arm64" },
  { arch: "arm64", sdCard: true },
  { arch: "arm64", flipErofsByte: 1030 },
];

// Building a disk runs the image tools synchronously: done before any boot, so that a QEMU's
// console is read as it comes and no boot's time limit passes while this process is busy.
if (it === test) {
  test.before(async () => {
    for (const d of DISKS) if (!("arch" in d) || itArm === test) await disk(d);
    for (const u of Object.keys(UEFI) as UefiCase[]) await uefiDisk(u);
    for (const m of Object.keys(MOK) as MokCase[]) await mokDisk(m);
    await untrustedDisk("x86-64");
    if (itArm === test) await untrustedDisk("arm64");
    await demoDisk();
  });
}

/**
 * The UEFI cases' disks: an ESP with the UKI (our initramfs, the command line with the test
 * disk's roothash=), systemd-boot unless the firmware starts the UKI itself, and the test DDI.
 * Its PARTUUID is not the test disk's, so that a decoy ESP of the test disks can sit beside it.
 */
const UEFI = {
  "systemd-boot": { bootloader: true, secureBoot: false, tamper: false },
  direct: { bootloader: false, secureBoot: false, tamper: false },
  "secure-boot": { bootloader: true, secureBoot: true, tamper: false },
  "secure-boot-tampered": { bootloader: true, secureBoot: true, tamper: true },
};
type UefiCase = keyof typeof UEFI;
const UEFI_ESP_PART_UUID = "5eb05eb0-1d2c-4e3f-8a9b-0c1d2e3f4a5b";

async function uefiDisk(name: UefiCase): Promise<{ disk: string; dir: string }> {
  const c = UEFI[name];
  const dir = join(ROOT, ".build", "uefi", name);
  mkdirSync(dir, { recursive: true });
  const d = (await buildDisk({})) as Disk & { ddi: string };
  const u = buildUefiDisk(dir, {
    kernel,
    initrd: INITRD,
    cmdline: `console=ttyS0 panic=-1 roothash=${d.rootHash} storage_init.timeout=20`,
    ddi: d.ddi,
    espPartUuid: UEFI_ESP_PART_UUID,
    direct: !c.bootloader,
    signer: c.secureBoot ? secureBootSigner() : undefined,
    // The signed command line with one digit of roothash= changed: what an attacker with write
    // access to the ESP, and without the key, can do.
    tamper: c.tamper
      ? (uki: string) => {
          const b = readFileSync(uki);
          const at = b.indexOf("roothash=") + "roothash=".length;
          b[at] = b[at] === 0x30 ? 0x31 : 0x30;
          writeFileSync(uki, b);
        }
      : undefined,
  });
  return { disk: u.disk, dir };
}

/** The demo (npm start) on a UEFI disk: Debian with systemd in the DDI (debootstrap, cached). */
/** The names in `dir` on the ESP (the first partition, at 1 MiB) of the disk image `disk` (mtools). */
function espNames(disk: string, dir: string): string[] {
  const out = execFileSync("mdir", ["-b", "-i", `${disk}@@1048576`, `::${dir}`], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.slice(l.lastIndexOf("/") + 1))
    .sort();
}

async function demoDisk(): Promise<{ disk: string; dir: string }> {
  const demo = (await buildDemoDisk()) as { ddi: string; rootHash: string };
  const dir = join(ROOT, ".build", "uefi", "demo");
  mkdirSync(dir, { recursive: true });
  const u = buildUefiDisk(dir, {
    kernel,
    initrd: INITRD,
    cmdline: `console=ttyS0 panic=-1 roothash=${demo.rootHash} ${DEMO_DDI_ARG}`,
    ddi: demo.ddi,
    ddiPath: DEMO_DDI_PATH,
    espPartUuid: DEMO_ESP_PART_UUID,
  });
  return { disk: u.disk, dir };
}

/** Boots a UEFI case under OVMF, the decoy disk `before` it when given. */
async function uefiBoot(name: UefiCase, opts: { before?: CaseDisk; stopOn?: RegExp } = {}): Promise<Boot> {
  const u = await uefiDisk(name);
  const drives: Drive[] = [{ file: u.disk, if: "virtio" }];
  if (opts.before !== undefined) drives.unshift({ file: (await disk(opts.before)).disk, if: "virtio" });
  return slot(() =>
    bootQemu({
      firmware: firmware(u.dir, { secureBoot: UEFI[name].secureBoot }),
      drives,
      timeoutMs: BOOT_LIMIT_MS,
      stopOn: opts.stopOn,
    }),
  );
}

/**
 * Signed DDIs: systemd-repart (Verity=data/hash/signature, --private-key, --certificate) signs
 * with the test key "mok" or "other" (qemu/images.mjs testKey); the machine has Secure Boot on,
 * shim (signed with the snakeoil key) starts systemd-boot, and "mok" is enrolled as a Machine
 * Owner Key in the variable store (MokList): shim mirrors it to MokListRT and MokListTrustedRT,
 * and the kernel trusts it for dm-verity through its .machine and secondary keyrings. Each
 * case: the DDIs on the ESP, and the UKI's command line (`PIN` is the first DDI's roothash=,
 * `SIGNERS:a,b` the storage_init.certificate_fingerprint= of those test keys); `moks`, the keys
 * enrolled when not only "mok" (a machine with DKMS has its own MOK besides the vendor's).
 */
const AB = "/EFI/storage-init/root.v";
const MOK = {
  signed: {
    cmdline: "storage_init.root_policy=signed SIGNERS:mok",
    ddis: [{ path: "/EFI/storage-init/root.raw", version: "1", signWith: "mok" }],
  },
  "all refused": {
    // Both keys pinned: the kernel's keyrings refuse "other".
    cmdline: `storage_init.root_policy=signed SIGNERS:mok,other storage_init.ddi=${AB}/ storage_init.on_failure=poweroff storage_init.failure_delay=0`,
    ddis: [
      { path: `${AB}/root_3.raw`, version: "3", signWith: "other" },
      { path: `${AB}/root_2.raw`, version: "2", signWith: "mok", corruptSignature: true },
      { path: `${AB}/root_1.raw`, version: "1" },
    ],
  },
  "newest verifying": {
    cmdline: `storage_init.root_policy=signed SIGNERS:mok storage_init.ddi=${AB}/`,
    ddis: [
      // Version 1, signed, copied to a newer name: its own os-release says 1.
      { path: `${AB}/root_4.raw`, version: "1", signWith: "mok" },
      { path: `${AB}/root_3.raw`, version: "3", signWith: "mok", corruptSignature: true },
      { path: `${AB}/root_2.raw`, version: "2", signWith: "mok" },
      { path: `${AB}/root_1.raw`, version: "1", signWith: "mok" },
    ],
  },
  floor: {
    cmdline: `storage_init.root_policy=signed SIGNERS:mok storage_init.ddi=${AB}/ storage_init.min_version=3 storage_init.on_failure=poweroff storage_init.failure_delay=0`,
    ddis: [
      { path: `${AB}/root_2.raw`, version: "2", signWith: "mok" },
      { path: `${AB}/root_1.raw`, version: "1", signWith: "mok" },
    ],
  },
  "pinned signer": {
    cmdline: `storage_init.root_policy=signed SIGNERS:mok storage_init.ddi=${AB}/`,
    moks: ["mok", "dkms"],
    ddis: [
      { path: `${AB}/root_2.raw`, version: "2", signWith: "dkms" },
      { path: `${AB}/root_1.raw`, version: "1", signWith: "mok" },
    ],
  },
  stick: {
    // The machine's own disk (vdb, which systemd-boot was started from) holds version 2; a stick
    // (vda, sorting first) carries the ESP's PARTUUID and version 1, signed by the same key.
    cmdline: "storage_init.root_policy=signed SIGNERS:mok",
    ddis: [{ path: "/EFI/storage-init/root.raw", version: "2", signWith: "mok" }],
  },
  update: {
    // The booted system installs UPDATE (version 2, on a second disk) as root_2.raw.
    cmdline: `storage_init.root_policy=signed SIGNERS:mok storage_init.ddi=${AB}/ storage_init_test.install_from=/dev/vdb storage_init_test.install_to=${AB}/root_2.raw`,
    ddis: [{ path: `${AB}/root_1.raw`, version: "1", signWith: "mok" }],
    espSpare: 32 << 20,
  },
  pinned: {
    cmdline: `roothash=PIN storage_init.ddi=${AB}/`,
    ddis: [
      { path: `${AB}/root_1.raw`, version: "1", signWith: "mok" },
      { path: `${AB}/root_2.raw`, version: "2", signWith: "mok" },
    ],
  },
} as const;
type MokCase = keyof typeof MOK;

/** The free room a case's ESP has beyond its files. */
function espSpare(name: MokCase): number {
  const c = MOK[name];
  return "espSpare" in c ? c.espSpare : 0;
}

/** The test keys enrolled as MOKs for a case. */
function mokKeys(name: MokCase): readonly string[] {
  const c = MOK[name];
  return "moks" in c ? c.moks : ["mok"];
}

/** storage_init.certificate_fingerprint= naming the test keys `keys` (qemu/images.mjs testKey). */
function signers(keys: readonly string[]): string {
  return "storage_init.certificate_fingerprint=" + keys.map((k) => certificateFingerprint(testKey(k).cert)).join(",");
}
const MOK_ESP_PART_UUID = "5eb05eb0-1d2c-4e3f-8a9b-0c1d2e3f4a5c";

type RepartDdi = { ddi: string; rootHash: string; fingerprint?: string };

/** The DDIs of a MOK case, built by systemd-repart (cached). */
async function mokDdis(name: MokCase): Promise<RepartDdi[]> {
  const out: RepartDdi[] = [];
  for (const d of MOK[name].ddis) out.push((await buildRepartDdi(d)) as RepartDdi);
  return out;
}

async function mokDisk(name: MokCase): Promise<{ disk: string; dir: string; ddis: RepartDdi[] }> {
  const dir = join(ROOT, ".build", "uefi", "mok-" + name.replace(/ /g, "-"));
  mkdirSync(dir, { recursive: true });
  const ddis = await mokDdis(name);
  const u = buildUefiDisk(dir, {
    kernel,
    initrd: INITRD,
    cmdline: `console=ttyS0 panic=-1 storage_init.timeout=20 ${MOK[name].cmdline
      .replace("PIN", ddis[0].rootHash)
      .replace(/SIGNERS:(\S+)/, (_m, keys: string) => signers(keys.split(",")))}`,
    extra: MOK[name].ddis.map((d, i) => ({ src: ddis[i].ddi, path: d.path })),
    espPartUuid: MOK_ESP_PART_UUID,
    espSpareBytes: espSpare(name),
    shim: true,
    signer: secureBootSigner(),
  });
  return { disk: u.disk, dir, ddis };
}

/** Boots a MOK case: Secure Boot, shim, the "mok" key enrolled. */
async function mokBoot(name: MokCase): Promise<{ r: Boot; ddis: RepartDdi[] }> {
  const u = await mokDisk(name);
  const r = await slot(() => mokBootOnce(name, u.dir, [{ file: u.disk, if: "virtio" }]));
  return { r, ddis: u.ddis };
}

/** One boot of a MOK case's machine with `drives`. */
function mokBootOnce(name: MokCase, dir: string, drives: Drive[]): Promise<Boot> {
  return bootQemu({
    firmware: firmware(dir, { secureBoot: true, mok: mokKeys(name).map((k) => testKey(k).cert) }),
    drives,
    timeoutMs: BOOT_LIMIT_MS,
  });
}

/**
 * A DDI signed by systemd-repart with the "other" key, which no machine here trusts (a key only
 * the build pipeline knows), on a plain ESP disk booted directly: no firmware, so no MOK either,
 * as on a board without Secure Boot.
 */
async function untrustedDisk(arch: "x86-64" | "arm64"): Promise<{ disk: string; ddi: RepartDdi }> {
  const ddi = (await buildRepartDdi({ version: "1", signWith: "other", arch })) as RepartDdi;
  const dir = join(ROOT, ".build", "untrusted-" + arch);
  mkdirSync(dir, { recursive: true });
  const disk = buildEspDisk(join(dir, "disk.img"), [{ src: ddi.ddi, path: "/EFI/storage-init/root.raw" }], {
    espPartUuid: ESP_PART_UUID,
  });
  return { disk, ddi };
}

/** Boots the untrusted-key disk of `arch` directly with `append`. */
async function untrustedBoot(arch: "x86-64" | "arm64", append: string): Promise<{ r: Boot; ddi: RepartDdi }> {
  const { disk: d, ddi } = await untrustedDisk(arch);
  const arm = arch === "arm64";
  const r = await slot(() =>
    bootQemu({
      arch,
      kernel: arm ? kernelArm64.vmlinuz : kernel.vmlinuz,
      initrd: arm ? INITRD_ARM64 : INITRD,
      append: `roothash=${ddi.rootHash} storage_init.timeout=20 ${append}`,
      drives: [{ file: d, if: arm ? "virtio-mmio" : "virtio" }],
      timeoutMs: BOOT_LIMIT_MS,
    }),
  );
  return { r, ddi };
}

function disk(opts: CaseDisk): Promise<Disk> {
  if (!DISKS.some((d) => JSON.stringify(d) === JSON.stringify(opts)))
    throw new Error(`add ${JSON.stringify(opts)} to DISKS`);
  const { arch, sdCard, ...variant } = opts;
  return buildDisk(variant, { arch, powerOfTwo: sdCard });
}

async function boot(c: Case): Promise<{ r: Boot; d: Disk }> {
  const d = await disk(c.disk ?? {});
  return slot(() => bootOnce(c, d));
}

async function bootOnce(c: Case, d: Disk): Promise<{ r: Boot; d: Disk }> {
  const drives: Drive[] = c.noDisk ? [] : [{ file: d.disk, if: c.drive ?? "virtio" }];
  if (c.before !== undefined) drives.unshift({ file: (await disk(c.before)).disk, if: c.drive ?? "virtio" });
  const arm = c.arch === "arm64";
  const r = await bootQemu({
    arch: c.arch,
    kernel: arm ? kernelArm64.vmlinuz : kernel.vmlinuz,
    initrd: c.initrd ?? (arm ? INITRD_ARM64 : INITRD),
    append: c.append.split("HASH").join(d.rootHash),
    drives,
    timeoutMs: BOOT_LIMIT_MS,
    extraArgs: c.extraArgs,
    onLine: c.onLine,
  });
  return { r, d };
}

function noPanic(t: ExecutionContext, r: Boot): void {
  t.false(r.timedOut, "QEMU did not finish in time:\n" + r.output);
  t.notRegex(r.output, /Kernel panic|Attempted to kill init/);
}

/** Asserts the root was reached through the whole chain. */
function reachedRoot(
  t: ExecutionContext,
  r: Boot,
  esp: RegExp,
  modules: string[],
  phases: string[] = phaseIds(),
): void {
  noPanic(t, r);
  t.regex(r.output, /storage-init: version \d+\.\d+\.\d+, pid 1, kernel command line: /);
  for (const m of modules)
    t.regex(r.output, new RegExp(`storage-init: loaded ${m} \\(\\d+\\.\\d+ ms\\)`), `module ${m}`);
  t.regex(r.output, esp);
  t.regex(
    r.output,
    /storage-init: dm-verity \/dev\/dm-0 \(sha256, \d+ blocks of (512|4096)\) over \/dev\/loop\d \+ \/dev\/loop\d/,
  );
  t.regex(r.output, /storage-init: mounted \/dev\/dm-0 \(erofs\) on \/sysroot/);
  t.regex(r.output, EROFS_MOUNTED, "the kernel's own line, which the refusals look for");
  t.regex(r.output, new RegExp("storage-init: phases \\(ms\\): " + phases.map((id) => id + " \\d+\\.\\d").join(", ")));
  t.regex(r.output, /storage-init: starting \/sbin\/init after \d+\.\d+ ms/);
  t.regex(r.output, /ROOT-REACHED uptime=\d+\.\d+ pid=1 argv=\/sbin\/init/);
  const timings = r.output.match(/TIMINGS (\{.*\})/);
  t.truthy(timings, "timings.json reached the new root");
  const timed = (JSON.parse((timings as RegExpMatchArray)[1]) as { phases: Array<{ phase: string }> }).phases.map(
    (p) => p.phase,
  );
  t.deepEqual(timed, phases);
  // What was booted, as the booted system's own mount table says.
  const mounts = mountTable(r.output);
  const root = mounts.find((m) => m.target === "/");
  t.like(root, { fstype: "erofs", source: "/dev/dm-0", ro: true }, "/ is the verified device, read-only");
  for (const m of mounts.filter((x) => x.fstype === "vfat")) t.true(m.ro, `vfat on ${m.target} is read-only`);
  t.true(
    mounts.some((m) => m.target === "/run/storage-init/esp" && m.fstype === "vfat"),
    "the ESP it came from, at /run/storage-init/esp",
  );
  t.regex(r.output, /reboot: Power down/);
}

/** The marker's `MOUNT` lines (/proc/self/mountinfo in the booted root): target, fstype, source, read-only. */
function mountTable(output: string): Array<{ target: string; fstype: string; source: string; ro: boolean }> {
  const out = [];
  for (const m of output.matchAll(/MOUNT \d+ \d+ \d+:\d+ \S+ (\S+) (\S+)[^\r\n]* - (\S+) (\S+) /g))
    out.push({ target: m[1], fstype: m[3], source: m[4], ro: m[2].split(",").includes("ro") });
  return out;
}

/** The kernel's own line when an erofs is mounted (fs/erofs/super.c): the root was activated. */
const EROFS_MOUNTED = /erofs:? \(device dm-\d+\): mounted/;

/**
 * Asserts the fatal line, then the action, no later than `delayS` + 1 s after it; and, unless
 * `mounted` (a failure found once a root was mounted), from the kernel's own log that no
 * verified root was ever mounted.
 */
function failedWith(
  t: ExecutionContext,
  r: Boot,
  line: string | RegExp,
  action: "reboot" | "poweroff",
  delayS: number,
  mounted = false,
): void {
  noPanic(t, r);
  if (!mounted) t.notRegex(r.output, EROFS_MOUNTED, "nothing was activated, by the kernel's own log");
  const lines = stampedLines(r.output);
  const fatal = lines.find((l) => l.text.startsWith("storage-init: failed to "));
  t.truthy(fatal, "a fatal line:\n" + r.output);
  if (!fatal) return;
  if (typeof line === "string") t.is(fatal.text, line);
  else t.regex(fatal.text, line);
  t.is(lines.filter((l) => l.text.startsWith("storage-init: failed to ")).length, 1, "exactly one fatal line");
  const done = lines.find((l) =>
    (action === "reboot" ? /reboot: (Restarting system|machine restart)/ : /reboot: Power down/).test(l.text),
  );
  t.truthy(done, `the ${action} happened`);
  if (done) t.true(done.t - fatal.t <= delayS + 1, `${action} ${(done.t - fatal.t).toFixed(2)} s after the error`);
  t.notRegex(r.output, /ROOT-REACHED/);
}

const OK = "roothash=HASH storage_init.timeout=20";

/** The fatal line of a DDI whose erofs data was changed after the root hash was taken. */
const TAMPERED =
  /^storage-init: failed to set up the root device: read the erofs superblock of \/dev\/dm-0: pread fd \d+ at 1024: EIO: dm-verity found blocks that do not match roothash= \(the image is corrupted or was tampered with\)$/;

// ---- happy paths ----

it("boot: virtio-blk disk, ESP by type, DDI at the default path", async (t) => {
  const { r } = await boot({ drive: "virtio", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by the ESP partition type\)/, [
    "virtio_pci",
    "virtio_blk",
    "vfat",
    "loop",
    "dm_verity",
    "erofs",
  ]);
  t.notRegex(r.output, /storage-init: loaded (nvme|virtio_scsi|usb_storage) /, "only what the hardware needs");
});

it("boot: NVMe disk loads nvme and finds nvme0n1p1", async (t) => {
  const { r } = await boot({ drive: "nvme", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/nvme0n1p1 \(found by the ESP partition type\)/, ["nvme_core", "nvme"]);
  t.notRegex(r.output, /storage-init: loaded virtio_blk /);
});

it("boot: virtio-scsi disk loads virtio_scsi and sd_mod", async (t) => {
  const { r } = await boot({ drive: "scsi", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/sda1 \(found by the ESP partition type\)/, ["virtio_scsi", "sd_mod"]);
});

it("boot: SATA disk on the q35 AHCI controller loads ahci and sd_mod", async (t) => {
  const { r } = await boot({ drive: "ahci", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/sda1 \(found by the ESP partition type\)/, ["ahci", "sd_mod"]);
});

it("boot: a DDI at another path given by storage_init.ddi=", async (t) => {
  const { r } = await boot({
    disk: { ddiPath: "/images/My OS/root.raw" },
    append: OK + ' "storage_init.ddi=/images/My OS/root.raw"',
  });
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]);
});

it("boot: storage_init.esp=PARTUUID= matching a cloned disk too: the ESP whose DDI roothash= pins is taken", async (t) => {
  // vda is another system's disk with the same ESP PARTUUID (a clone); its DDI is not this hash's.
  const { r } = await boot({
    before: { hash: "sha512" },
    append: OK + " storage_init.esp=PARTUUID=" + ESP_PART_UUID,
  });
  t.regex(
    r.output,
    /storage-init: passed over \/dev\/vda1: root partition UUID [0-9a-f-]{36} does not match roothash= /,
  );
  reachedRoot(
    t,
    r,
    /storage-init: ESP \/dev\/vdb1 \(found by storage_init\.esp=PARTUUID=[0-9a-f-]{36}\)/,
    ["virtio_blk"],
    ["api", "cmdline", "coldplug", "esp", "ddi", "esp", "ddi", "verity", "mount", "switch-root"],
  );
});

it("boot: a corrupted primary GPT header is replaced by the backup and the boot succeeds", async (t) => {
  const { r } = await boot({ disk: { corruptPrimaryGpt: true }, append: OK });
  t.regex(
    r.output,
    /storage-init: \/dev\/vda: primary GPT is damaged \(no "EFI PART" signature at LBA 1 \(512- or 4096-byte sectors\)\); using the backup/,
  );
  reachedRoot(
    t,
    r,
    /storage-init: ESP at \/dev\/vda bytes 1048576\+\d+ \(found by the ESP partition type; the kernel made no partition node\) on \/dev\/loop0/,
    ["virtio_blk"],
  );
  t.is(r.output.split("primary GPT is damaged").length, 2, "said once");
});

it("boot: a disk that appears late is waited for", async (t) => {
  // No disk at boot; the test hot-plugs it into a PCIe root port 3 s after the init starts.
  const d = await disk({});
  const sock = join(ROOT, ".build", `qmp-${process.pid}.sock`);
  let plugged = false;
  const { r } = await boot({
    noDisk: true,
    append: "roothash=HASH storage_init.timeout=40",
    extraArgs: ["-device", "pcie-root-port,id=rp1,slot=1,chassis=1", "-monitor", `unix:${sock},server=on,wait=off`],
    onLine: (line) => {
      if (plugged || !/storage-init: version /.test(line)) return;
      plugged = true;
      setTimeout(() => {
        const mon = createConnection(sock);
        mon.on("error", () => undefined);
        mon.write(`drive_add 0 if=none,id=late,file=${d.disk},format=raw,readonly=on\n`);
        setTimeout(() => mon.end(`device_add virtio-blk-pci,drive=late,bus=rp1,id=latedisk\n`), 500);
      }, 3000);
    },
  });
  t.true(plugged);
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]);
  const lines = stampedLines(r.output);
  const start = lines.find((l) => /Run \/init/.test(l.text));
  const esp = lines.find((l) => /storage-init: ESP /.test(l.text));
  t.true(!!start && !!esp && esp.t - start.t > 2.5, "the ESP was found only after the hot-plug");
});

it("boot: a sha512 DDI (a 128-digit roothash=) loads the kernel's sha512 module and reaches the root", async (t) => {
  const { r, d } = await boot({ disk: { hash: "sha512" }, append: OK });
  t.is(d.rootHash.length, 128);
  t.regex(r.output, /storage-init: loaded sha512_generic /);
  t.regex(r.output, /storage-init: dm-verity \/dev\/dm-0 \(sha512, \d+ blocks of 4096\)/);
  t.regex(r.output, /ROOT-REACHED/);
  noPanic(t, r);
});

it("boot: a sha1 DDI boots only with storage_init.allow_weak_hash", async (t) => {
  const { r, d } = await boot({ disk: { hash: "sha1" }, append: OK + " storage_init.allow_weak_hash" });
  t.is(d.rootHash.length, 40);
  t.regex(r.output, /storage-init: dm-verity \/dev\/dm-0 \(sha1, \d+ blocks of 4096\)/);
  t.regex(r.output, /ROOT-REACHED/);
  noPanic(t, r);
});

it("boot: 128 SCSI LUNs appearing while the init waits, the ESP's disk the last, are taken in stride", async (t) => {
  // A burst of devices as when an HBA scans a JBOD: the uevent socket may overflow (ENOBUFS),
  // which only means another rescan of sysfs.
  const blank = join(ROOT, ".build", "blank-lun.img");
  writeFileSync(blank, Buffer.alloc(1 << 20));
  const d = await disk({});
  const args = ["-device", "virtio-scsi-pci,id=scsi0"];
  for (let lun = 0; lun <= 128; lun++) {
    const file = lun === 128 ? d.disk : blank;
    args.push("-drive", `if=none,id=lun${lun},file=${file},format=raw,read-only=on`);
    args.push("-device", `scsi-hd,drive=lun${lun},bus=scsi0.0,channel=0,scsi-id=0,lun=${lun}`);
  }
  const { r } = await boot({ noDisk: true, append: OK + " storage_init.timeout=60", extraArgs: args });
  reachedRoot(t, r, /storage-init: ESP \/dev\/sd[a-z]+1 \(found by the ESP partition type\)/, [
    "virtio_scsi",
    "sd_mod",
  ]);
  const attached = r.output.split("Attached SCSI disk").length - 1;
  t.true(attached > 100, `${attached} SCSI disks attached`);
});

// ---- UEFI: OVMF, systemd-boot, the UKI ----

it("uefi: OVMF -> systemd-boot -> the UKI; a decoy ESP on the first disk: LoaderDevicePartUUID leads to the DDI", async (t) => {
  // vda is a disk whose ESP has no DDI (and no loader: the firmware goes on to vdb).
  const r = await uefiBoot("systemd-boot", { before: { omitDdi: true } });
  reachedRoot(t, r, /storage-init: ESP \/dev\/vdb1 \(found by LoaderDevicePartUUID\)/, ["virtio_blk"]);
  t.notRegex(r.output, /\/dev\/vda1/, "the decoy ESP was never looked at");
  t.regex(r.output, /Kernel command line: console=ttyS0 panic=-1 roothash=[0-9a-f]{64} storage_init\.timeout=20/);
});

it("uefi: the UKI started by the firmware itself (systemd-stub sets LoaderDevicePartUUID)", async (t) => {
  const r = await uefiBoot("direct");
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, ["virtio_blk"]);
});

it("uefi: the demo: systemd-boot, the UKI, storage-init, then Debian's systemd, which reports storage-init's start as its initrd's", async (t) => {
  const u = await demoDisk();
  const r = await slot(() =>
    bootQemu({
      firmware: firmware(u.dir),
      // Writable: the booted system counts its DDI's tries on the ESP.
      drives: [{ file: u.disk, if: "virtio", readonly: false }],
      memory: 1024,
      timeoutMs: 300000,
    }),
  );
  noPanic(t, r);
  // Boot counting, as the README installs it: one try counted early, the counter dropped once
  // boot-complete.target was reached; the ESP says so after the machine is off.
  const dir = "/EFI/storage-init/root.v";
  t.regex(r.output, new RegExp(`storage-init-bless: count: ${dir}/root_1\\+3\\.raw -> ${dir}/root_1\\+2-1\\.raw`));
  t.regex(r.output, new RegExp(`storage-init-bless: good: ${dir}/root_1\\+2-1\\.raw -> ${dir}/root_1\\.raw`));
  t.deepEqual(espNames(u.disk, dir), ["root_1.raw"]);
  t.regex(r.output, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/);
  t.regex(r.output, /storage-init: starting \/usr\/lib\/systemd\/systemd after \d+\.\d+ ms/);
  t.regex(r.output, /ROOT-REACHED uptime=[\d.]+ init=\/usr\/lib\/systemd\/systemd/);
  const a = analyzeInitrd(r.output);
  t.regex(a.analyze.join("\n"), /^Startup finished in .*\(kernel\) \+ .*\(initrd\) \+ .*\(userspace\)/, r.output);
  // systemd's initrd timestamp is the one storage-init handed over: its own start, to the µs.
  const timings = JSON.parse((r.output.match(/TIMINGS (\{.*\})/) as RegExpMatchArray)[1]) as { startMs: number };
  const handed = (r.output.match(/ANALYZE-INITRD-USEC (\d+) (\d+)/) as RegExpMatchArray).slice(1).map(Number);
  // (timings.json rounds to the µs, the serialization truncates: one µs apart at most)
  t.true(Math.abs(handed[0] / 1000 - timings.startMs) < 0.0015, `${handed[0]} µs vs startMs ${timings.startMs}`);
  // Its "(initrd)" runs from there to its own start: storage-init's time plus the execve of systemd.
  t.true(a.systemdMs !== undefined && a.oursMs !== undefined, r.output.slice(-4000));
  t.true((a.systemdMs as number) > (a.oursMs as number), `systemd ${a.systemdMs} ms, ours ${a.oursMs} ms`);
  t.true((a.systemdMs as number) < (a.oursMs as number) + 5000, `systemd ${a.systemdMs} ms, ours ${a.oursMs} ms`);
});

it("uefi: Secure Boot enforced: the signed systemd-boot and UKI boot", async (t) => {
  const r = await uefiBoot("secure-boot");
  t.regex(r.output, /secureboot: Secure boot enabled/);
  t.regex(r.output, /Kernel is locked down from EFI Secure Boot/);
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, ["virtio_blk"]);
});

it("uefi: Secure Boot refuses a UKI whose command line (roothash=) was changed after signing", async (t) => {
  const r = await uefiBoot("secure-boot-tampered", { stopOn: /No bootable option or device was found/ });
  t.false(r.timedOut, "the firmware gave up:\n" + r.output);
  t.regex(r.output, /Error loading \\EFI\\Linux\\storage-init\.efi: Access Denied/);
  t.notRegex(r.output, /Linux version|storage-init:/, "no kernel ran");
});

// ---- signed DDIs: the kernel checks the signature against the MOK shim enrolled ----

/** The line of a DDI the kernel accepted, naming its signature. */
function accepted(d: RepartDdi): RegExp {
  return new RegExp(
    `storage-init: dm-verity /dev/dm-0 \\(sha256, \\d+ blocks of \\d+\\) over /dev/loop\\d \\+ /dev/loop\\d; the kernel accepted the signature of root hash ${d.rootHash} \\(certificate SHA-256 ${d.fingerprint}\\)`,
  );
}

it("signed: without roothash=, the root hash from the DDI's signature, which the kernel checks against the enrolled MOK", async (t) => {
  const { r, ddis } = await mokBoot("signed");
  t.regex(r.output, /secureboot: Secure boot enabled/);
  t.regex(
    r.output,
    /integrity: Loaded X\.509 cert 'storage-init test key mok: [0-9a-f]+'/,
    "shim handed the MOK to the kernel",
  );
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, [
    "dm_verity require_signatures=1",
  ]);
  t.regex(r.output, accepted(ddis[0]));
});

it("signed: an untrusted key, a corrupted signature and no signature are each refused with their own line, never activated", async (t) => {
  const { r, ddis } = await mokBoot("all refused");
  const fp = (d: RepartDdi) => `certificate SHA-256 ${d.fingerprint}`;
  failedWith(
    t,
    r,
    `storage-init: failed to open the DDI ${AB}/: none of the 3 DDIs is usable: ` +
      `/dev/vda1 ${AB}/root_3.raw: the kernel refused the signature of root hash ${ddis[0].rootHash} (${fp(ddis[0])}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it; ` +
      // A byte of the RSA signature value changed: its padding no longer decodes (EINVAL).
      `/dev/vda1 ${AB}/root_2.raw: the kernel refused the signature of root hash ${ddis[1].rootHash} (${fp(ddis[1])}): EINVAL, its signature value does not decode, as when it was corrupted; ` +
      `/dev/vda1 ${AB}/root_1.raw: the DDI has no root-verity-sig partition for x86-64, and storage_init.root_policy=signed takes only signed roots`,
    "poweroff",
    0,
  );
  t.notRegex(r.output, /storage-init: dm-verity \/dev\/dm-0/, "nothing was activated");
  t.notRegex(r.output, /storage-init: mounted/);
});

it("signed: an A/B directory boots the newest version whose signature verifies and whose image says its name's version", async (t) => {
  const { r, ddis } = await mokBoot("newest verifying");
  // Each DDI tried: phase ddi, verity, and mount for the renamed one, which is mounted, read and released.
  const phases = ["api", "cmdline", "coldplug", "esp", "ddi", "verity", "mount", "ddi", "verity"];
  reachedRoot(
    t,
    r,
    /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/,
    [],
    [...phases, "ddi", "verity", "mount", "switch-root"],
  );
  t.regex(
    r.output,
    new RegExp(
      `storage-init: ${AB}/: 4 candidates, newest first: ${AB}/root_4.raw, ${AB}/root_3.raw, ${AB}/root_2.raw, ${AB}/root_1.raw`,
    ),
  );
  t.regex(
    r.output,
    new RegExp(
      `storage-init: passed over /dev/vda1 ${AB}/root_4.raw: its name says version 4, the image says IMAGE_VERSION=1\r?\n`,
    ),
  );
  t.regex(
    r.output,
    new RegExp(
      `storage-init: passed over /dev/vda1 ${AB}/root_3.raw: the kernel refused the signature of root hash ${ddis[1].rootHash} .*: EINVAL`,
    ),
  );
  t.regex(r.output, accepted(ddis[2]));
  t.regex(
    r.output,
    new RegExp(`storage-init: root from ${AB}/root_2.raw on /dev/vda1 \\(version 2\\) after 2 passed over`),
  );
});

it("signed: storage_init.min_version= above every DDI ends in one line naming the floor, nothing left mounted", async (t) => {
  const { r } = await mokBoot("floor");
  failedWith(
    t,
    r,
    `storage-init: failed to open the DDI ${AB}/: none of the 2 DDIs is usable: ` +
      `/dev/vda1 ${AB}/root_2.raw: its version 2 is older than storage_init.min_version=3; ` +
      `/dev/vda1 ${AB}/root_1.raw: its version 1 is older than storage_init.min_version=3`,
    "poweroff",
    0,
    true,
  );
  // Each was verified and mounted to read its version, then released: the second reused the name.
  t.is(r.output.match(/storage-init: dm-verity \/dev\/dm-\d+ /g)?.length, 2, r.output);
});

it("signed: a newer DDI signed by another enrolled MOK (the kernel trusts it) is refused under a pinned signer", async (t) => {
  const { r, ddis } = await mokBoot("pinned signer");
  t.regex(r.output, /integrity: Loaded X\.509 cert 'storage-init test key dkms: [0-9a-f]+'/, "both keys enrolled");
  reachedRoot(
    t,
    r,
    /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/,
    [],
    ["api", "cmdline", "coldplug", "esp", "ddi", "verity", "ddi", "verity", "mount", "switch-root"],
  );
  t.regex(
    r.output,
    new RegExp(
      `storage-init: passed over /dev/vda1 ${AB}/root_2.raw: the signature of root hash ${ddis[0].rootHash} \\(certificate SHA-256 ${ddis[0].fingerprint}\\) is not taken: it was made by certificate SHA-256 ${ddis[0].fingerprint}, which storage_init.certificate_fingerprint= does not name`,
    ),
  );
  t.regex(r.output, accepted(ddis[1]));
});

it("signed: a stick with the ESP's PARTUUID and an older signed DDI, sorting first, does not win", async (t) => {
  const u = await mokDisk("stick");
  const old = (await buildRepartDdi({ version: "1", signWith: "mok" })) as RepartDdi;
  const stick = buildEspDisk(join(u.dir, "stick.img"), [{ src: old.ddi, path: "/EFI/storage-init/root.raw" }], {
    espPartUuid: MOK_ESP_PART_UUID,
  });
  const r = await slot(() =>
    mokBootOnce("stick", u.dir, [
      { file: stick, if: "virtio" },
      { file: u.disk, if: "virtio" },
    ]),
  );
  // Each ESP's plain path activated once to read its version; then the newest again, taken.
  const tried = ["esp", "ddi", "verity", "mount"];
  reachedRoot(
    t,
    r,
    /storage-init: ESP \/dev\/vdb1 \(found by LoaderDevicePartUUID\)/,
    [],
    ["api", "cmdline", "coldplug", ...tried, ...tried, ...tried, "switch-root"],
  );
  t.regex(
    r.output,
    /storage-init: 2 partitions match the ESP's selector \(\/dev\/vda1, \/dev\/vdb1\): the newest image version among them is taken/,
  );
  t.regex(r.output, /storage-init: root from \/EFI\/storage-init\/root\.raw on \/dev\/vdb1 \(version 2\)/);
  t.regex(r.output, accepted(u.ddis[0]));
});

it("signed: the booted system installs the next DDI on the ESP it booted from, and the next boot takes it", async (t) => {
  const u = await mokDisk("update");
  const next = (await buildRepartDdi({ version: "2", signWith: "mok" })) as RepartDdi;
  // The ESP's disk is written by the first boot and read by the second; the update comes on vdb.
  const drives: Drive[] = [
    { file: u.disk, if: "virtio", readonly: false },
    { file: next.ddi, if: "virtio" },
  ];
  const first = await slot(() => mokBootOnce("update", u.dir, drives));
  reachedRoot(t, first, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, []);
  t.regex(first.output, new RegExp(`storage-init: root from ${AB}/root_1.raw on /dev/vda1 \\(version 1\\)`));
  t.regex(first.output, new RegExp(`INSTALLED \\d+ bytes from /dev/vdb to ${AB}/root_2.raw`), first.output);
  const second = await slot(() => mokBootOnce("update", u.dir, drives));
  reachedRoot(t, second, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, []);
  t.regex(second.output, new RegExp(`storage-init: root from ${AB}/root_2.raw on /dev/vda1 \\(version 2\\)`));
  t.regex(second.output, accepted(next));
  const chosen = JSON.parse((second.output.match(/ROOT-JSON (\{.*\})/) as RegExpMatchArray)[1]) as {
    path: string;
    imageVersion: string;
    signer: string;
  };
  t.like(chosen, { path: `${AB}/root_2.raw`, imageVersion: "2", signer: next.fingerprint });
  t.regex(second.output, new RegExp(`INSTALLED already ${AB}/root_2.raw`));
});

it("signed: an A/B directory with roothash= boots the version it pins, its signature checked as well", async (t) => {
  const { r, ddis } = await mokBoot("pinned");
  const phases = ["api", "cmdline", "coldplug", "esp", "ddi", "ddi", "verity", "mount", "switch-root"];
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, [], phases);
  t.regex(
    r.output,
    new RegExp(`storage-init: passed over /dev/vda1 ${AB}/root_2.raw: root partition UUID .* does not match roothash=`),
  );
  t.regex(r.output, accepted(ddis[0]));
  t.regex(
    r.output,
    new RegExp(`storage-init: root from ${AB}/root_1.raw on /dev/vda1 \\(version 1\\) after 1 passed over`),
  );
  t.notRegex(r.output, /require_signatures/, "roothash= pins; the kernel is not told to require signatures");
});

// ---- arm64: QEMU virt, the same init cross-built ----

itArm("arm64: virtio over MMIO (device tree, platform bus): virtio_mmio loads by its of: modalias", async (t) => {
  const { r } = await boot({ arch: "arm64", disk: { arch: "arm64" }, drive: "virtio-mmio", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by the ESP partition type\)/, ["virtio_mmio", "virtio_blk"]);
  t.notRegex(r.output, /storage-init: loaded virtio_pci /, "no PCI virtio device on this machine");
});

itArm("arm64: an SD card behind sdhci", async (t) => {
  const { r } = await boot({ arch: "arm64", disk: { arch: "arm64", sdCard: true }, drive: "sd", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/mmcblk0p1 \(found by the ESP partition type\)/, ["sdhci", "sdhci_pci"]);
});

itArm("arm64: a USB stick behind xhci", async (t) => {
  const { r } = await boot({ arch: "arm64", disk: { arch: "arm64" }, drive: "usb", append: OK });
  reachedRoot(t, r, /storage-init: ESP \/dev\/sd[a-z]1 \(found by the ESP partition type\)/, [
    "xhci_pci",
    "usb_storage",
    "sd_mod",
  ]);
});

itArm("arm64: a tampered DDI is refused with the same line as on x86-64", async (t) => {
  const { r } = await boot({
    arch: "arm64",
    disk: { arch: "arm64", flipErofsByte: 1030 },
    drive: "virtio-mmio",
    append: OK + " storage_init.failure_delay=1",
  });
  failedWith(t, r, TAMPERED, "reboot", 1);
});

itArm("arm64: UEFI: AAVMF -> systemd-boot -> the arm64 UKI (linuxaa64.efi.stub)", async (t) => {
  const d = (await disk({ arch: "arm64" })) as Disk & { ddi: string };
  const dir = join(ROOT, ".build", "uefi", "arm64");
  mkdirSync(dir, { recursive: true });
  const u = buildUefiDisk(dir, {
    kernel: kernelArm64,
    initrd: INITRD_ARM64,
    cmdline: `console=ttyAMA0 panic=-1 roothash=${d.rootHash} storage_init.timeout=20`,
    ddi: d.ddi,
    espPartUuid: UEFI_ESP_PART_UUID,
    arch: "arm64",
  });
  const r = await slot(() =>
    bootQemu({
      arch: "arm64",
      firmware: firmware(dir, { arch: "arm64" }),
      drives: [{ file: u.disk, if: "virtio" }],
      timeoutMs: BOOT_LIMIT_MS,
    }),
  );
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/, ["virtio_blk"]);
});

// ---- failures ----

it("boot fails: wrong roothash= (partition UUIDs do not match)", async (t) => {
  const wrong = "ab".repeat(32);
  const { r, d } = await boot({ append: `roothash=${wrong} storage_init.failure_delay=1` });
  const actual = uuidFromHex(d.rootHash.slice(0, 32));
  failedWith(
    t,
    r,
    `storage-init: failed to open the DDI /EFI/storage-init/root.raw on /dev/vda1: root partition UUID ${actual} does not match roothash= (expected abababab-abab-abab-abab-abababababab)`,
    "reboot",
    1,
  );
});

it("boot fails: no roothash= at all refuses an unverified root", async (t) => {
  const { r } = await boot({ append: "storage_init.on_failure=poweroff storage_init.failure_delay=0" });
  failedWith(
    t,
    r,
    "storage-init: failed to read the kernel command line: no roothash= on the kernel command line: refusing to boot an unverified root (storage_init.root_policy=signed takes the root hash from a signed DDI; systemd.verity=0 boots without verification)",
    "poweroff",
    0,
  );
});

it("boot fails: one flipped byte in the erofs superblock is stopped by dm-verity", async (t) => {
  const { r } = await boot({ disk: { flipErofsByte: 1030 }, append: OK + " storage_init.failure_delay=1" });
  failedWith(t, r, TAMPERED, "reboot", 1);
  t.regex(r.output, /device-mapper: verity: \d+:\d+: data block \d+ is corrupted/);
});

it("boot fails: a byte of the root's init changed after the root hash was taken: the EIO when the kernel executes it is reported as tampering", async (t) => {
  // The superblock, the mount, the init's inode and os-release all verify: only the init's data
  // is bad, and only the kernel reads it, at execve, after the switch.
  const { r } = await boot({ disk: { flipInitByte: true }, append: OK + " storage_init.failure_delay=1" });
  failedWith(
    t,
    r,
    'storage-init: failed to switch root: execve "/sbin/init": EIO: dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)',
    "reboot",
    1,
    true,
  );
  t.regex(r.output, /storage-init: mounted \/dev\/dm-0 \(erofs\) on \/sysroot/);
  t.regex(r.output, /device-mapper: verity: \d+:\d+: data block \d+ is corrupted/);
});

it("boot fails: a verity superblock that verifies less than the erofs root holds is refused, root hash or not", async (t) => {
  const { r } = await boot({ disk: { lowerVerityDataBlocks: 1 }, append: OK + " storage_init.failure_delay=0" });
  failedWith(
    t,
    r,
    /^storage-init: failed to set up the root device: the erofs file system has \d+ bytes, but dm-verity verifies only \d+ of them$/,
    "reboot",
    0,
  );
});

it("boot fails: the DDI is missing from the ESP", async (t) => {
  const { r } = await boot({
    disk: { omitDdi: true },
    append: OK + " storage_init.on_failure=poweroff storage_init.failure_delay=0",
  });
  failedWith(
    t,
    r,
    'storage-init: failed to open the DDI /EFI/storage-init/root.raw on /dev/vda1: stat "/run/storage-init/esp/EFI/storage-init/root.raw": ENOENT',
    "poweroff",
    0,
  );
});

/**
 * The storage-init lines of a boot that timed out waiting for the ESP, from the first of the
 * details before the fatal line to the fatal line, which must be at most 200 characters.
 */
function timeoutLines(t: ExecutionContext, r: Boot, details: number): string[] {
  const ours = stampedLines(r.output)
    .map((l) => l.text)
    .filter((l) => l.startsWith("storage-init: "));
  const at = ours.findIndex((l) => l.startsWith("storage-init: failed to "));
  t.true(at >= details, r.output);
  t.true(ours[at].length <= 200, `${ours[at].length} characters: ${ours[at]}`);
  return ours.slice(at - details, at + 1);
}

/** The detail lines every ESP timeout ends with: modules loaded, block devices, modaliases seen. */
function lastDetails(t: ExecutionContext, got: string[], loaded: RegExp, blocks: string): void {
  t.regex(got[got.length - 4], loaded);
  t.is(got[got.length - 3], "storage-init: block devices: " + blocks);
  t.regex(
    got[got.length - 2],
    /^storage-init: \d+ modaliases seen; \d+ of devices no storage driver serves not listed$/,
  );
}

it("boot fails: no ESP on the disk times out, the cause first in a short fatal line, the details before it", async (t) => {
  const { r } = await boot({
    disk: { noEsp: true },
    append: "roothash=HASH storage_init.timeout=3 storage_init.failure_delay=0",
  });
  const fatal =
    "storage-init: failed to find the ESP: no partition of vda, vda1 is it; waited 3 s for the ESP (the ESP partition type)";
  failedWith(t, r, fatal, "reboot", 0);
  // q35's bridges, display, timers, serial port and keyboard are not storage: none is listed.
  const got = timeoutLines(t, r, 3);
  lastDetails(
    t,
    got,
    /^storage-init: modules loaded: scsi_common, scsi_mod, libata, libahci, ahci, virtio_pci_legacy_dev, virtio_pci_modern_dev, virtio_ring, virtio, virtio_pci, virtio_blk$/,
    "vda, vda1",
  );
  t.is(got[3], fatal);
  t.notRegex(r.output, /no module for/);
});

it("boot fails: a disk that never appears times out (q35's AHCI controller is real hardware: ahci loads)", async (t) => {
  const { r } = await boot({
    noDisk: true,
    append: "roothash=HASH storage_init.timeout=2 storage_init.failure_delay=0 storage_init.on_failure=poweroff",
  });
  const fatal =
    "storage-init: failed to find the ESP: no disk appeared; waited 2 s for the ESP (the ESP partition type)";
  failedWith(t, r, fatal, "poweroff", 0);
  const got = timeoutLines(t, r, 3);
  lastDetails(t, got, /^storage-init: modules loaded: scsi_common, scsi_mod, libata, libahci, ahci$/, "none");
  t.is(got[3], fatal);
});

it("boot fails: a required module missing from the initramfs is the cause the fatal line gives first", async (t) => {
  // The same initramfs with virtio_blk.ko taken out (the table still names it).
  const initrd = join(ROOT, ".build", "initramfs-no-virtio_blk.cpio.gz");
  const entries = readCpio(gunzipSync(readFileSync(INITRD)));
  writeFileSync(initrd, gzipSync(cpioArchive(entries.filter((e) => e.path !== "modules/virtio_blk.ko"))));
  const { r } = await boot({ initrd, append: "roothash=HASH storage_init.timeout=3 storage_init.failure_delay=0" });
  const why =
    'load module virtio_blk (for virtio:d00000002v00001AF4): "/modules/virtio_blk.ko" is missing from the initramfs';
  const fatal = `storage-init: failed to find the ESP: ${why}; waited 3 s for the ESP (the ESP partition type)`;
  failedWith(t, r, fatal, "reboot", 0);
  const got = timeoutLines(t, r, 4);
  t.is(got[0], "storage-init: module failed: " + why);
  lastDetails(t, got, /^storage-init: modules loaded: .*, virtio_pci$/, "none");
  t.is(got[4], fatal);
});

it("boot fails: on_failure=shell without a shell says so and reboots", async (t) => {
  const { r } = await boot({ disk: { omitDdi: true }, append: OK + " storage_init.on_failure=shell" });
  noPanic(t, r);
  t.regex(
    r.output,
    /storage-init: on_failure=shell: no shell in the initramfs \(tried \/bin\/sh, \/usr\/bin\/sh, \/bin\/busybox\); rebooting instead/,
  );
  t.regex(r.output, /reboot: Restarting system/);
});

// ---- PID 1 never exits ----

it("boot: strict overcommit (vm.overcommit_memory=2) reaches the root", async (t) => {
  const { r } = await boot({ append: OK + " sysctl.vm.overcommit_memory=2" });
  reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 /, ["virtio_blk"]);
});

it("boot fails: the runtime out of memory at start ends in the fatal line and the action, not a panic", async (t) => {
  // 16 MiB of commit for the whole machine: enough to execute /init, not for porffor's heap.
  const { r } = await boot({ append: OK + " sysctl.vm.overcommit_memory=2 sysctl.vm.overcommit_kbytes=16384" });
  failedWith(
    t,
    r,
    /^storage-init: failed to start the init: the runtime exited with status 1 \(out of memory, or an error it could not report: porffor's own message is on the console\)$/,
    "reboot",
    5,
  );
  t.regex(r.output, /porffor: (failed to reserve gc metadata|out of memory)/);
});

// ---- a signature the kernel refuses, on a root roothash= pins ----

for (const arch of ["x86-64", "arm64"] as const) {
  const itA = arch === "arm64" ? itArm : it;
  itA(
    `${arch}: a DDI signed by a key the kernel does not trust boots pinned by roothash=: the signature tried first, then one warning`,
    async (t) => {
      const { r, ddi } = await untrustedBoot(arch, "storage_init.debug loglevel=8");
      // (storage_init.debug names the modalias each module was loaded for)
      reachedRoot(t, r, /storage-init: ESP \/dev\/vda1 \(found by the ESP partition type\)/, []);
      const texts = stampedLines(r.output).map((l) => l.text);
      t.deepEqual(
        texts.filter((l) => l.includes("refused the signature")),
        [
          `storage-init: the kernel refused the signature of root hash ${ddi.rootHash} (certificate SHA-256 ${ddi.fingerprint}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it; roothash= pins the root: activating it without the signature`,
        ],
      );
      // What was loaded: the table naming the signature, refused; then the pinned hash alone.
      const tables = texts.filter((l) => l.startsWith("storage-init: verity table: "));
      t.is(tables.length, 2, tables.join("\n"));
      t.regex(
        tables[0],
        new RegExp(` sha256 ${ddi.rootHash} [0-9a-f]+ 2 root_hash_sig_key_desc storage-init:root-verity:[0-9a-f]{32}$`),
      );
      t.regex(tables[1], new RegExp(` sha256 ${ddi.rootHash} [0-9a-f]+$`));
      t.notRegex(r.output, /the kernel accepted the signature/);
      t.notRegex(r.output, /loaded dm_verity require_signatures=1/);
    },
  );

  itA(
    `${arch}: the same DDI pinned by roothash= with storage_init.root_policy=signed is refused (ENOKEY), nothing activated`,
    async (t) => {
      const { r, ddi } = await untrustedBoot(
        arch,
        `storage_init.root_policy=signed ${signers(["other"])} storage_init.on_failure=poweroff storage_init.failure_delay=0`,
      );
      failedWith(
        t,
        r,
        `storage-init: failed to set up the root device: the kernel refused the signature of root hash ${ddi.rootHash} (certificate SHA-256 ${ddi.fingerprint}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it`,
        "poweroff",
        0,
      );
      t.regex(r.output, /storage-init: loaded dm_verity require_signatures=1 \(/);
      t.notRegex(r.output, /storage-init: dm-verity \/dev\/dm-0|without the signature|storage-init: mounted /);
    },
  );
}
