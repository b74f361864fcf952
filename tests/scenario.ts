/**
 * The QEMU boots' harness. A Scenario is one machine booting once: its architecture, the
 * firmware and UKI or the kernel loaded directly, its drives and what each holds, the kernel
 * command line, and what the console must show. prepare() builds every scenario's images before
 * any boot (the image tools run synchronously: during a boot they would hold up the reading of
 * the consoles and eat into the boots' time limits); bootScenario() boots one and asserts what
 * it expects, and the test asserts the rest.
 */
import test from "ava";
import type { ExecutionContext } from "ava";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { DEFAULT_DDI_PATH } from "../lib/facts.js";
import { phaseIds } from "../runtime/phases.js";
import type { Arch } from "../toolchain/arches.js";
import type { DebianRelease } from "../qemu/debian_root.js";
import { distName } from "../toolchain/arches.js";
import { DEFAULT_RELEASE } from "../toolchain/debian.mjs";
import { ddiArchive, initramfsPath, initrdWithDdi, memoryPathOf, packInitramfs } from "../toolchain/init_image.mjs";
import { cpioArchive, readCpio } from "../toolchain/initramfs.mjs";
import { DIST, WORK } from "../toolchain/tools.mjs";
import { bootQemu, consoleArgs, needsPowerOfTwo } from "../qemu/boot.js";
import type { Boot, BootMedia, BootOptions, Drive, DriveInterface, Firmware, Network } from "../qemu/boot.js";
import { buildDemoDisk } from "../qemu/demo_root.mjs";
import { buildEncryptedRoot, pcrKey, tpmFor } from "../qemu/encrypted_root.js";
import type { EncryptedRoot } from "../qemu/encrypted_root.js";
import { buildDisk, buildEspDisk, buildRepartDdi, certificateFingerprint, testKey } from "../qemu/images.js";
import type { DiskVariant, EspFile, RepartOptions, TestKeyName } from "../qemu/images.js";
import { fetchKernel } from "../qemu/kernel.mjs";
import { buildFinalRoot, buildSecondStage } from "../qemu/second_stage.js";
import { ESP_PART_UUID } from "../qemu/test_disk.js";
import { stampedLines } from "../qemu/timeline.mjs";
import { buildUefiDisk, firmware, secureBootSigner } from "../qemu/uefi.mjs";
import { testIfBuilt } from "./helpers.js";

/** Where a DDI comes from; built for the scenario's architecture. */
export type DdiSource =
  /** The DDI of the test disk `variant` (qemu/images.ts). */
  | { variant: DiskVariant }
  /** A DDI systemd-repart made (qemu/images.ts buildRepartDdi). */
  | { repart: Omit<RepartOptions, "arch"> }
  /** Debian with systemd: the demo's DDI (qemu/demo_root.mjs; x86-64). */
  | { demo: true }
  /** A systemd initrd from Debian's packages, a second stage (qemu/second_stage.ts; x86-64). */
  | { secondStage: true };

/** A DDI on an ESP, at `path` (DEFAULT_DDI_PATH unless given). */
export interface EspDdi {
  ddi: DdiSource;
  path?: string;
}

/** What a drive holds. */
export type DiskSource =
  /** The test disk `variant`: GPT, ESP, the DDI on it. */
  | { variant: DiskVariant }
  /** A GPT disk whose one partition is an ESP holding `ddis`, PARTUUID `partUuid` (the test disk's unless given). */
  | { esp: EspDdi[]; partUuid?: string }
  /** A DDI alone, as a whole disk. */
  | { ddi: DdiSource }
  /** The ESP of the scenario's UKI (Scenario.uefi). */
  | { uki: true }
  /** `bytes` of zeros. */
  | { blank: number }
  /** The root a second stage switches into: an ext4 file system on the whole disk (qemu/second_stage.ts; x86-64). */
  | { finalRoot: true }
  /**
   * That root on LVM in LUKS2, its key sealed to the scenario's TPM (qemu/encrypted_root.ts;
   * x86-64): writable for the machine, its writes thrown away.
   */
  | { encryptedRoot: true };

export interface ScenarioDrive {
  disk: DiskSource;
  /** virtio unless given. */
  if?: DriveInterface;
  /** Read-only unless true (the booted system writes to the ESP). */
  writable?: boolean;
  /** Plugged in while the machine runs (qemu/boot.ts Drive.plug). */
  plug?: { after: RegExp; delayMs: number };
}

/** A UEFI boot: what the firmware starts, from the ESP of the drive `{ uki: true }`. */
export interface Uefi {
  /** systemd-boot as the removable-media loader; shim as that, starting systemd-boot; or the UKI itself. */
  loader: "systemd-boot" | "shim" | "uki";
  /** The firmware's Secure Boot build, its test key signing the loaders and the UKI. */
  secureBoot?: boolean;
  /** Test keys enrolled as Machine Owner Keys (in the variable store, for shim). */
  mok?: TestKeyName[];
  /** The DDIs on the ESP beside the loader and the UKI. */
  ddis: EspDdi[];
  /** The ESP's PARTUUID. */
  partUuid: string;
  /** Free room on the ESP beyond its files (for a booted system's update). */
  spareBytes?: number;
  /** One digit of roothash= changed in the UKI after signing: what an attacker without the key can do. */
  tamper?: boolean;
  /**
   * A signed PCR 11 policy in the UKI (.pcrsig, .pcrpkey: qemu/encrypted_root.ts pcrKey),
   * predicted for its command line; with `changedAfterSigning`, these words are added to the
   * command line of a UKI that keeps the policy signed for the one without them.
   */
  pcr?: { changedAfterSigning?: string };
  /**
   * The firmware fetches the UKI over the network (qemu/boot.ts networkArgs(): TFTP from QEMU's
   * server, or HTTP from one on 127.0.0.1) instead of from the ESP of a drive `{ uki: true }`.
   */
  network?: "tftp" | "http";
}

/** What the console must show: the verified root reached, or the one fatal line and the action. */
export type Expect =
  | {
      /**
       * The ESP's line (or the line of the root taken from memory, `inMemory`), the modules that
       * must have loaded, the phases timed (phaseIds() unless given), and whether the root is a
       * second stage (its erofs under a writable overlay).
       */
      reached: { esp: RegExp; modules: string[]; phases?: string[]; secondStage?: boolean; inMemory?: boolean };
    }
  | {
      /** failedWith()'s arguments. */
      failed: { line: string | RegExp; action: "reboot" | "poweroff"; delayS: number; mounted?: boolean };
    };

/** A DDI a scenario's drives hold, as built: its file, root hash, and signer where it is signed. */
export interface Ddi {
  ddi: string;
  rootHash: string;
  fingerprint?: string;
}

export interface Scenario {
  /** x86-64 unless given. */
  arch?: Arch;
  /**
   * The Debian release whose kernel boots and whose root the demo's DDI holds (toolchain/debian.mjs;
   * bookworm unless given); for another, the built init is packed with that kernel's modules.
   */
  debian?: DebianRelease;
  /** UEFI firmware boots the UKI, whose command line is `cmdline`; without, QEMU loads the kernel and the initramfs. */
  uefi?: Uefi;
  drives: ScenarioDrive[];
  /**
   * The kernel command line after consoleArgs(): `HASH` stands for the root hash of `pin`, and
   * `SIGNERS:a,b` for storage_init.certificate_fingerprint= naming the test keys a and b.
   */
  cmdline: string;
  /** The DDI `HASH` stands for: the first DDI of the last drive unless given, or the one in memory. */
  pin?: DdiSource;
  /**
   * A DDI carried in memory: the initramfs followed by an archive holding it as /ddi/root.raw
   * (toolchain/init_image.mjs initrdWithDdi()), as `node build.mjs --ddi` makes it.
   */
  inMemory?: DdiSource;
  /** A file taken out of the initramfs (the table still names what it held). */
  initramfsWithout?: string;
  /** What the boot must show; a function of the drives' DDIs (in drive order) where they say it. */
  expect?: Expect | ((ddis: Ddi[]) => Expect);
  /** The boot ends at the first console line this matches. */
  stopOn?: RegExp;
  /** MiB. */
  memory?: number;
  /** BOOT_LIMIT_MS unless given. */
  timeoutMs?: number;
  /** A TPM (swtpm) in the state the encrypted root was sealed to, copied for each boot. */
  tpm?: true;
}

/** A scenario booted: QEMU's result, and the drives' files and DDIs, in drive order (the DDI in memory last). */
export interface Booted {
  r: Boot;
  files: string[];
  ddis: Ddi[];
}

/** Every boot, success or failure, must end well within this. */
const BOOT_LIMIT_MS = 150000;

/** The initramfs `node build.mjs tests` builds for `arch`. */
function initramfs(arch: Arch): string {
  return initramfsPath(DIST, arch, ["all"]);
}

/** `test` where the initramfs of `arch` was built, else a skip naming the command (testIfBuilt). */
export function testFor(arch: Arch): typeof test {
  return testIfBuilt(initramfs(arch), "node build.mjs tests");
}

/** What prepare() made of a scenario: the options of its boot, the variable store copied in before each, its DDIs. */
interface Prepared {
  options: BootOptions;
  /** The firmware's variable store as prepared, copied to the boot's own before each boot. */
  varsTemplate?: string;
  /** The encrypted root whose TPM, as it was sealed, is copied to the boot's own (options.tpm, in `dir`) before each boot. */
  sealed?: EncryptedRoot;
  dir: string;
  ddis: Ddi[];
}

const prepared = new WeakMap<Scenario, Prepared>();

/**
 * The scenarios prepare() builds: those STORAGE_INIT_SCENARIOS names (comma-separated), or all.
 * ava does not tell a test file what `--match` selected, so a run of a few tests names their
 * scenarios here to skip building the others' images.
 */
function selected(name: string): boolean {
  const only = process.env.STORAGE_INIT_SCENARIOS;
  if (only === undefined || only.trim() === "") return true;
  return only.split(",").some((n) => n.trim() === name);
}

/**
 * Builds the images of every scenario in `scenarios` whose architecture's initramfs was built
 * (and that selected() takes), one after another, in .build/boot/<name>/ and the image cache.
 */
export async function prepare(scenarios: Record<string, Scenario>): Promise<void> {
  for (const [name, s] of Object.entries(scenarios)) {
    if (!existsSync(initramfs(s.arch ?? "x86-64")) || !selected(name)) continue;
    prepared.set(s, await prepareOne(join(WORK, "boot", name.replace(/[^\w.-]+/g, "-")), s));
  }
}

/** Builds what `s` boots, in `dir`. */
async function prepareOne(dir: string, s: Scenario): Promise<Prepared> {
  const at: Where = { arch: s.arch ?? "x86-64", dir, release: s.debian ?? DEFAULT_RELEASE };
  mkdirSync(dir, { recursive: true });
  const ukiEsp = s.uefi === undefined ? undefined : await espFiles(at, s.uefi.ddis);
  const drives: Array<{ file: string | undefined; ddis: Ddi[] }> = [];
  for (const [i, d] of s.drives.entries()) drives.push(await driveFile(at, d, `drive-${i}`, ukiEsp));
  const memory = s.inMemory === undefined ? undefined : await ddiOf(at, s.inMemory);
  const pinned = s.pin !== undefined ? await ddiOf(at, s.pin) : (drives[drives.length - 1]?.ddis[0] ?? memory);
  if (pinned === undefined && s.cmdline.includes("HASH"))
    throw new Error("HASH in the command line, and no DDI to pin");
  const cmdline = s.cmdline
    .replace(/SIGNERS:(\S+)/g, (_m, keys: string) => signers(keys.split(",")))
    .split("HASH")
    .join(pinned?.rootHash ?? "");
  const kernel = kernelOf(at.arch, at.release);
  let initrd = initramfs(at.arch);
  if (at.release !== DEFAULT_RELEASE) {
    const packed = join(dir, "initramfs-all.cpio.gz");
    await packInitramfs({
      init: join(DIST, distName(at.arch, "storage-init")),
      out: packed,
      modulesDir: kernel.modulesDir,
    });
    initrd = packed;
  }
  if (s.initramfsWithout !== undefined) {
    const entries = readCpio(gunzipSync(readFileSync(initrd)));
    initrd = join(dir, "initramfs.cpio.gz");
    writeFileSync(initrd, gzipSync(cpioArchive(entries.filter((e) => e.path !== s.initramfsWithout))));
  }
  if (memory !== undefined) {
    const withDdi = join(dir, "initramfs+ddi.cpio");
    initrdWithDdi(initrd, ddiArchive(memory.ddi, memoryPathOf(memory.ddi, DEFAULT_DDI_PATH)), withDdi);
    initrd = withDdi;
  }
  let media: BootMedia = { kernel: kernel.vmlinuz, initrd, append: cmdline };
  let network: Network | undefined;
  let varsTemplate: string | undefined;
  let ukiDisk: string | undefined;
  if (s.uefi !== undefined && ukiEsp !== undefined) {
    const u = s.uefi;
    const full = `${consoleArgs(at.arch)} ${cmdline}`;
    const changed = u.pcr?.changedAfterSigning;
    const built = buildUefiDisk(dir, {
      kernel,
      initrd,
      cmdline: changed === undefined ? full : `${full} ${changed}`,
      pcr: u.pcr === undefined ? undefined : { ...pcrKey(), cmdline: full },
      extra: ukiEsp.files,
      espPartUuid: u.partUuid,
      espSpareBytes: u.spareBytes ?? 0,
      direct: u.loader === "uki",
      shim: u.loader === "shim",
      signer: u.secureBoot ? secureBootSigner(at.arch) : undefined,
      arch: at.arch,
      tamper: u.tamper ? tamperRootHash : undefined,
    });
    ukiDisk = built.disk;
    if (u.network !== undefined) network = { file: built.uki, by: u.network };
    const mok = u.mok?.map((k) => testKey(k).cert);
    const fw: Firmware = firmware(dir, { arch: at.arch, secureBoot: u.secureBoot === true, mok });
    varsTemplate = join(dir, "OVMF_VARS.prepared.fd");
    copyFileSync(fw.vars, varsTemplate);
    media = { firmware: fw };
  }
  const qemuDrives = s.drives.map((d, i): Drive => {
    const file = drives[i].file ?? ukiDisk;
    if (file === undefined) throw new Error("a drive { uki: true } needs the scenario's uefi");
    const readonly = "encryptedRoot" in d.disk ? "snapshot" : d.writable !== true;
    return { file, if: d.if ?? "virtio", readonly, plug: d.plug };
  });
  const sealed = s.tpm === undefined ? undefined : await buildEncryptedRoot();
  return {
    options: {
      ...media,
      arch: at.arch,
      drives: qemuDrives,
      stopOn: s.stopOn,
      memory: s.memory,
      timeoutMs: s.timeoutMs ?? BOOT_LIMIT_MS,
      tpm: sealed === undefined ? undefined : join(dir, "tpm"),
      network,
    },
    varsTemplate,
    sealed,
    dir,
    ddis: [...drives.flatMap((d) => d.ddis), ...(memory === undefined ? [] : [memory])],
  };
}

const kernels = new Map<string, ReturnType<typeof fetchKernel>>();

/** Debian `release`'s kernel for `arch`, fetched once (finding its package asks apt-cache). */
function kernelOf(arch: Arch, release: DebianRelease): ReturnType<typeof fetchKernel> {
  const known = kernels.get(`${arch} ${release}`);
  if (known !== undefined) return known;
  const k = fetchKernel(arch, release);
  kernels.set(`${arch} ${release}`, k);
  return k;
}

/** Where a scenario's images are built: for its architecture and Debian release, in its folder. */
interface Where {
  arch: Arch;
  dir: string;
  release: DebianRelease;
}

/** The DDI `src`, built (or taken from the cache). */
async function ddiOf(at: Where, src: DdiSource): Promise<Ddi> {
  if ("variant" in src) return buildDisk(src.variant, { arch: at.arch });
  if ("repart" in src) return buildRepartDdi({ ...src.repart, arch: at.arch });
  if ("secondStage" in src) return buildSecondStage();
  const demo: Ddi = await buildDemoDisk(at.release, at.arch);
  return demo;
}

/** The DDIs `ddis`, built, and the files that put them on an ESP. */
async function espFiles(at: Where, ddis: EspDdi[]): Promise<{ files: EspFile[]; built: Ddi[] }> {
  const built: Ddi[] = [];
  for (const d of ddis) built.push(await ddiOf(at, d.ddi));
  return { files: ddis.map((d, i) => ({ src: built[i].ddi, path: d.path ?? DEFAULT_DDI_PATH })), built };
}

/**
 * The file of drive `d` (named `name` where it is made here) and the DDIs it holds; no file for
 * the UKI's ESP, which is written once the command line is known.
 */
async function driveFile(
  at: Where,
  d: ScenarioDrive,
  name: string,
  ukiEsp: { built: Ddi[] } | undefined,
): Promise<{ file: string | undefined; ddis: Ddi[] }> {
  const src = d.disk;
  if ("variant" in src) {
    const disk = await buildDisk(src.variant, { arch: at.arch, powerOfTwo: needsPowerOfTwo(d.if ?? "virtio") });
    return { file: disk.disk, ddis: [disk] };
  }
  if ("esp" in src) {
    const { files, built } = await espFiles(at, src.esp);
    const espPartUuid = src.partUuid ?? ESP_PART_UUID;
    return { file: buildEspDisk(join(at.dir, `${name}.img`), files, { espPartUuid }), ddis: built };
  }
  if ("ddi" in src) {
    const built = await ddiOf(at, src.ddi);
    return { file: built.ddi, ddis: [built] };
  }
  if ("uki" in src) {
    if (ukiEsp === undefined) throw new Error("a drive { uki: true } needs the scenario's uefi");
    return { file: undefined, ddis: ukiEsp.built };
  }
  if ("finalRoot" in src) return { file: buildFinalRoot(), ddis: [] };
  if ("encryptedRoot" in src) return { file: (await buildEncryptedRoot()).disk, ddis: [] };
  const file = join(at.dir, `blank-${src.blank}.img`);
  writeFileSync(file, Buffer.alloc(src.blank));
  return { file, ddis: [] };
}

/** storage_init.certificate_fingerprint= naming the test keys `keys` (qemu/images.ts testKey). */
export function signers(keys: readonly string[]): string {
  return "storage_init.certificate_fingerprint=" + keys.map((k) => certificateFingerprint(testKey(k).cert)).join(",");
}

/** Changes one digit of roothash= in the UKI `uki` (after signing). */
function tamperRootHash(uki: string): void {
  const b = readFileSync(uki);
  const at = b.indexOf("roothash=") + "roothash=".length;
  b[at] = b[at] === 0x30 ? 0x31 : 0x30;
  writeFileSync(uki, b);
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

/** Boots `s`, which prepare() built, and asserts what it expects. */
export async function bootScenario(t: ExecutionContext, s: Scenario): Promise<Booted> {
  const p = prepared.get(s);
  if (p === undefined)
    throw new Error(
      "the scenario was not prepared: give prepare() the table it is in (and name it in STORAGE_INIT_SCENARIOS if that is set)",
    );
  const r = await slot(() => {
    if (p.varsTemplate !== undefined && "firmware" in p.options) copyFileSync(p.varsTemplate, p.options.firmware.vars);
    if (p.sealed !== undefined) tpmFor(p.sealed, p.dir);
    return bootQemu(p.options);
  });
  const expect = typeof s.expect === "function" ? s.expect(p.ddis) : s.expect;
  if (expect !== undefined && "reached" in expect)
    reachedRoot(
      t,
      r,
      expect.reached.esp,
      expect.reached.modules,
      expect.reached.phases,
      expect.reached.secondStage,
      expect.reached.inMemory,
    );
  else if (expect !== undefined) {
    const f = expect.failed;
    failedWith(t, r, f.line, f.action, f.delayS, f.mounted);
  }
  return { r, files: (p.options.drives ?? []).map((d) => d.file), ddis: p.ddis };
}

export function noPanic(t: ExecutionContext, r: Boot): void {
  t.false(r.timedOut, "QEMU did not finish in time:\n" + r.output);
  t.notRegex(r.output, /Kernel panic|Attempted to kill init/);
}

/** The kernel's own line when an erofs is mounted (fs/erofs/super.c): the root was activated. */
const EROFS_MOUNTED = /erofs:? \(device dm-\d+\): mounted/;

/** Asserts the root was reached through the whole chain. */
export function reachedRoot(
  t: ExecutionContext,
  r: Boot,
  esp: RegExp,
  modules: string[],
  phases: string[] = phaseIds(),
  secondStage = false,
  inMemory = false,
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
  if (timings === null) return;
  const timed = (JSON.parse(timings[1]) as { phases: Array<{ phase: string }> }).phases.map((p) => p.phase);
  t.deepEqual(timed, phases);
  // What was booted, as the booted system's own mount table says.
  const mounts = mountTable(r.output);
  const root = mounts.find((m) => m.target === "/");
  if (secondStage) {
    // The verified erofs is the overlay's lower layer, detached from every mount table.
    t.like(root, { fstype: "overlay", source: "overlay", ro: false }, "/ is the overlay over the verified device");
    t.regex(r.output, /storage-init: second stage: \S+ under a tmpfs overlay on \/sysroot/);
    t.regex(r.output, /ROOT-JSON \{.*"secondStage":true/);
    t.regex(r.output, /WRITABLE \/etc/);
  } else {
    t.like(root, { fstype: "erofs", source: "/dev/dm-0", ro: true }, "/ is the verified device, read-only");
    t.regex(r.output, /ROOT-JSON \{.*"secondStage":false/);
    t.regex(r.output, /READ-ONLY \/etc: open "\/etc\/storage-init-test": EROFS/);
  }
  for (const m of mounts.filter((x) => x.fstype === "vfat")) t.true(m.ro, `vfat on ${m.target} is read-only`);
  if (inMemory) {
    t.regex(r.output, /ROOT-JSON \{"source":"initrd","esp":\{"device":"","partUuid":""\},"path":"\/ddi\//);
    t.false(
      mounts.some((m) => m.fstype === "vfat"),
      "no ESP mounted",
    );
  } else
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

/**
 * Asserts the fatal line, then the action, no later than `delayS` + 1 s after it; and, unless
 * `mounted` (a failure found once a root was mounted), from the kernel's own log that no
 * verified root was ever mounted.
 */
export function failedWith(
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
