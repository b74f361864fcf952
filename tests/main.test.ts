// The whole boot against FakeKernel: sysfs devices that appear as their drivers load, a disk
// holding a real GPT, a DDI shaped like the real one (fake_world.ts), emulated loop and
// device-mapper ioctls, and the switch root. One case boots the DDI that qemu/images.ts makes
// with the real tools (mkfs.erofs, veritysetup, sgdisk). QEMU tests (boot.test.ts) do the same
// with the real kernel.
import test from "ava";
import { readFileSync } from "node:fs";
import { u32le, u64le } from "../lib/bytes.js";
import { PartitionType } from "../lib/facts.js";
import { uuidFromHex } from "../lib/hex.js";
import { VERSION } from "../runtime/build_facts.js";
import { phaseIds } from "../runtime/phases.js";
import { KernelError } from "../syscalls/errno.js";
import { RebootCmd } from "../syscalls/kernel.js";
import { buildDisk } from "../qemu/images.js";
import type { FakeKernel } from "./fake_kernel.js";
import {
  FAKE_PIN,
  fakeFingerprint,
  logLines,
  signatureJson,
  syntheticDdi,
  TABLE,
  world,
  worldDisk,
} from "./fake_world.js";
import type { WorldOptions } from "./fake_world.js";
import { rng } from "./rng.js";
import { importBuiltWith } from "./helpers.js";
import { resealGpt, writeGpt } from "./gpt_writer.js";
import { ESP_PART_UUID } from "../qemu/test_disk.js";

const HASH = "0123456789abcdef".repeat(4);
const DDI = syntheticDdi(HASH);
const lines = logLines;
const W = (cmdline: string, opts: Partial<WorldOptions> = {}) => world(cmdline, { ddi: DDI, ...opts });

test("boot() goes from coldplug to exec of the new root's init", (t) => {
  const { k, run } = W(`roothash=${HASH} storage_init.timeout=5`);
  const stop = run();
  t.is(stop.reason, "exec", k.logText());
  t.deepEqual(k.execs, [{ path: "/sbin/init", argv: ["/sbin/init", "single"], envp: ["HOME=/", "TERM=linux"] }]);
  t.deepEqual(k.modulesLoaded, [
    "virtio",
    "virtio_pci",
    "virtio_blk",
    "fat",
    "vfat",
    "loop",
    "dm_mod",
    "dm_verity",
    "erofs",
  ]);
  const m = k.mountLog.map((x) => [x.source, x.target, x.fstype]);
  t.deepEqual(m.slice(0, 4), [
    ["proc", "/proc", "proc"],
    ["sysfs", "/sys", "sysfs"],
    ["devtmpfs", "/dev", "devtmpfs"],
    ["tmpfs", "/run", "tmpfs"],
  ]);
  t.true(m.some((x) => x[0] === "/dev/vda1" && x[2] === "vfat"));
  t.true(m.some((x) => x[0] === "/dev/dm-0" && x[2] === "erofs"));
  t.is(k.dmTables.length, 1);
  t.is(k.dmTables[0], `1 7:0 7:1 4096 4096 16 1 sha256 ${HASH} deadbeef`);
  const log = lines(k);
  t.true(log.includes("storage-init: ESP /dev/vda1 (found by the ESP partition type)"));
  t.true(log.some((l) => /^storage-init: starting \/sbin\/init after \d+\.\d+ ms$/.test(l)));
  const timings = JSON.parse(new TextDecoder().decode(k.nodes.get("/run/storage-init/timings.json")?.data));
  t.deepEqual(
    timings.phases.map((p: { phase: string }) => p.phase),
    phaseIds(),
  );
  t.is(
    new TextDecoder().decode(k.nodes.get("/proc/sys/kernel/printk_devkmsg")?.data).trim(),
    "ratelimit",
    "the kmsg rate limit is handed back",
  );
  t.deepEqual(k.oldRoot, [], "the initramfs was emptied");
  t.is(k.ueventSockets + k.polls, 0, "the disk appeared while its driver loaded: nothing waited for it");
});

test("boot() says its version, its pid and the command line as read, with kmsg unlimited while it runs", (t) => {
  let during = "";
  const { k, run } = W(`roothash=${HASH}`, {
    onRootMount: (fk) => {
      during = new TextDecoder().decode(fk.nodes.get("/proc/sys/kernel/printk_devkmsg")?.data);
    },
  });
  t.is(run().reason, "exec");
  t.is(during.split("\n")[0], "on", "the value written (a proc file takes what is written, whatever was there)");
  const said = k.kmsg.filter((r) => r.includes("kernel command line"));
  t.deepEqual(said, [`<5>storage-init: version ${VERSION}, pid 1, kernel command line: roothash=${HASH}\n`]);
  t.deepEqual(
    lines(k).filter((l) => l.includes("storage_init.ddi=")),
    [],
    "no warning of a DDI systemd-stub loads",
  );
});

test("boot() uses the backup GPT and a loop device when the kernel made no partition node", (t) => {
  const { k, run } = W(`roothash=${HASH}`, { primaryBroken: true });
  t.is(run().reason, "exec");
  t.true(lines(k).some((l) => l.startsWith('storage-init: /dev/vda: primary GPT is damaged (no "EFI PART" signature')));
  t.true(k.mountLog.some((x) => x.source === "/dev/loop0" && x.fstype === "vfat"));
});

function failure(
  t: import("ava").ExecutionContext,
  cmdline: string,
  expected: string,
  opts: Partial<WorldOptions> = {},
): FakeKernel {
  const { k, run } = W(cmdline, opts);
  const stop = run();
  t.is(stop.reason, "halted");
  const fatal = lines(k).filter((l) => l.startsWith("storage-init: failed to "));
  t.deepEqual(fatal, [expected]);
  t.is(k.execs.length, 0);
  return k;
}

/**
 * The `n` lines before the fatal one, and the fatal one, which must be one line of at most 200
 * characters (an 80-column console shows it in three rows).
 */
function beforeFatal(t: import("ava").ExecutionContext, k: FakeKernel, n: number): string[] {
  const log = lines(k);
  const at = log.findIndex((l) => l.startsWith("storage-init: failed to "));
  t.true(at >= 0, k.logText());
  t.true(log[at].length <= 200, `${log[at].length} characters: ${log[at]}`);
  return log.slice(at - n, at + 1);
}

test("boot() with a wrong roothash= stops before any device-mapper work", (t) => {
  const k = failure(
    t,
    `roothash=${"ab".repeat(32)} storage_init.failure_delay=0`,
    `storage-init: failed to open the DDI /EFI/storage-init/root.raw on /dev/vda1: root partition UUID ${uuidFromHex(HASH.slice(0, 32))} does not match roothash= (expected abababab-abab-abab-abab-abababababab)`,
  );
  t.deepEqual(k.reboots, [RebootCmd.RESTART]);
  t.is(k.dmTables.length, 0);
});

test("boot() without roothash= refuses to boot, and on_failure=halt halts", (t) => {
  const k = failure(
    t,
    "storage_init.on_failure=halt storage_init.failure_delay=0",
    "storage-init: failed to read the kernel command line: no roothash= on the kernel command line: refusing to boot an unverified root (storage_init.root_policy=signed takes the root hash from a signed DDI; systemd.verity=0 boots without verification)",
  );
  t.deepEqual(k.reboots, [RebootCmd.HALT]);
});

test("boot() waits the failure delay before the action", (t) => {
  const { k, run } = W("storage_init.failure_delay=3 storage_init.on_failure=poweroff");
  const before = k.now;
  run();
  t.deepEqual(k.reboots, [RebootCmd.POWER_OFF]);
  t.true(k.now - before >= 3000);
  t.true(lines(k).includes("storage-init: poweroff in 3.0 s"));
});

test("boot() names the path and the ESP of a missing DDI", (t) => {
  failure(
    t,
    `roothash=${HASH} storage_init.failure_delay=0`,
    'storage-init: failed to open the DDI /EFI/storage-init/root.raw on /dev/vda1: stat "/run/storage-init/esp/EFI/storage-init/root.raw": ENOENT',
    { espFiles: new Map() },
  );
});

test("boot() tries each ESP in turn: the one whose DDI matches roothash= is taken", (t) => {
  const other = syntheticDdi("fedcba9876543210".repeat(4));
  // vda's ESP holds another system's DDI; vdb, a clone with the same PARTUUID, holds this one.
  const { k, run } = W(`roothash=${HASH}`, {
    espFiles: new Map([["/EFI/storage-init/root.raw", other]]),
    cloneEspFiles: new Map([["/EFI/storage-init/root.raw", DDI]]),
  });
  t.is(run().reason, "exec", k.logText());
  const log = lines(k);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1: root partition UUID ${uuidFromHex("fedcba9876543210".repeat(2))} does not match roothash= (expected ${uuidFromHex(HASH.slice(0, 32))})`,
    ),
  );
  t.true(log.includes("storage-init: ESP /dev/vdb1 (found by the ESP partition type)"));
  t.deepEqual(
    k.mountLog.filter((x) => x.fstype === "vfat").map((x) => x.source),
    ["/dev/vda1", "/dev/vdb1"],
  );
  t.is(k.dmTables.length, 1);
});

test("boot() names every ESP's reason when none holds a usable DDI", (t) => {
  const k = failure(
    t,
    `roothash=${HASH} storage_init.failure_delay=0`,
    "storage-init: failed to open the DDI /EFI/storage-init/root.raw: none of the 2 ESPs holds a DDI this boot can use: " +
      '/dev/vda1: stat "/run/storage-init/esp/EFI/storage-init/root.raw": ENOENT; ' +
      '/dev/vdb1: "/run/storage-init/esp/EFI/storage-init/root.raw" is a directory, not a DDI image',
    { espFiles: new Map(), cloneEspFiles: new Map([["/EFI/storage-init/root.raw/x", DDI]]) },
  );
  t.is(k.mounts.filter((m) => m.fstype === "vfat").length, 0, "no ESP is left mounted");
  t.is(k.dmTables.length, 0);
});

test("boot() warns of a DDI where systemd-stub loads extensions, and boots it", (t) => {
  const { k, run } = W(`roothash=${HASH} storage_init.ddi=/loader/extensions/root.raw`, {
    espFiles: new Map([["/loader/extensions/root.raw", DDI]]),
  });
  t.is(run().reason, "exec", k.logText());
  t.true(
    lines(k).includes(
      "storage-init: storage_init.ddi=/loader/extensions/root.raw lies in /loader/extensions/: systemd-stub read all of it into memory; move it",
    ),
  );
});

test("boot() says a DDI that is not a GPT image is not one", (t) => {
  failure(
    t,
    `roothash=${HASH} storage_init.failure_delay=0`,
    'storage-init: failed to open the DDI /EFI/storage-init/root.raw on /dev/vda1: no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)',
    {
      espFiles: new Map([["/EFI/storage-init/root.raw", new Uint8Array(1048576)]]),
    },
  );
});

test("boot() times out on a disk that never appears: the cause first in the fatal line, the details before it", (t) => {
  const k = failure(
    t,
    `roothash=${HASH} storage_init.timeout=2 storage_init.failure_delay=0`,
    "storage-init: failed to find the ESP: no module for pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01; waited 2 s for the ESP (the ESP partition type); no DDI in memory",
    { noDisk: true },
  );
  t.deepEqual(beforeFatal(t, k, 4), [
    "storage-init: no module for 1 device a storage driver could serve: pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
    "storage-init: modules loaded: virtio, virtio_pci, virtio_blk",
    "storage-init: block devices: none",
    "storage-init: 3 modaliases seen",
    "storage-init: failed to find the ESP: no module for pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01; waited 2 s for the ESP (the ESP partition type); no DDI in memory",
  ]);
  t.deepEqual(k.reboots, [RebootCmd.RESTART]);
  t.is(k.ueventSockets, 1, "a round that loaded nothing opens the uevent socket");
  t.true(k.polls >= 8, `the boot waited on uevents until the timeout (${k.polls} polls)`);
});

test("boot() goes on past a module that fails to load, and names it first if the ESP never appears", (t) => {
  const { k, run } = W(`roothash=${HASH} storage_init.timeout=2 storage_init.failure_delay=0`);
  k.failModules.set("virtio_blk", 8);
  run();
  const why = 'load module virtio_blk (for virtio:d00000002v00001AF4): finit_module "/modules/virtio_blk.ko": ENOEXEC';
  t.true(lines(k).includes("storage-init: " + why), "said when it happened");
  t.deepEqual(beforeFatal(t, k, 5), [
    "storage-init: module failed: " + why,
    "storage-init: no module for 1 device a storage driver could serve: pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
    "storage-init: modules loaded: virtio, virtio_pci",
    "storage-init: block devices: none",
    "storage-init: 3 modaliases seen",
    "storage-init: failed to find the ESP: " + why + "; waited 2 s for the ESP; no DDI in memory",
  ]);
  t.is(lines(k).filter((l) => l.includes("failed to")).length, 1);
});

test("boot() boots past a driver that fails for a device the ESP does not need", (t) => {
  const { k, run } = W(`roothash=${HASH}`);
  // A controller whose driver fails to probe (ENODEV), beside the virtio disk.
  k.addFile("/modules/table", TABLE.replace("\na ", "\nm floppy floppy.ko -\na floppy pci:v0000DEADd*\na "));
  k.addFile("/modules/floppy.ko", "\x7fELF");
  k.addBusDevice("pci", "0000:00:03.0", "pci:v0000DEADd00000001sv00000000sd00000000bc01sc02i00");
  k.failModules.set("floppy", 19);
  t.is(run().reason, "exec", k.logText());
  t.true(
    lines(k).includes(
      'storage-init: load module floppy (for pci:v0000DEADd00000001sv00000000sd00000000bc01sc02i00): finit_module "/modules/floppy.ko": ENODEV',
    ),
  );
});

test("boot() passes module.param=value words of the command line to finit_module", (t) => {
  const { k, run } = W(`roothash=${HASH} virtio_blk.queue_depth=64 virtio-blk.poll_queues=1 "dm_mod.x=a b"`);
  t.is(run().reason, "exec");
  t.deepEqual(k.moduleParams.get("virtio_blk"), "queue_depth=64 poll_queues=1");
  t.deepEqual(k.moduleParams.get("dm_mod"), 'x="a b"');
  t.is(k.moduleParams.get("virtio"), "");
  t.true(lines(k).includes("storage-init: loaded virtio_blk queue_depth=64 poll_queues=1 (5.0 ms)"));
});

test("boot() takes a module already loaded (EEXIST) as loaded", (t) => {
  const { k, run } = W(`roothash=${HASH}`);
  k.modulesLoaded.push("virtio");
  t.is(run().reason, "exec");
});

test("boot() names tampered data that dm-verity finds at mount time as such", (t) => {
  const { k, run } = W(`roothash=${HASH} storage_init.failure_delay=0`);
  const realMount = k.mount.bind(k);
  k.mount = (source, target, fstype, flags, data) => {
    if (fstype === "erofs") {
      k.verityStatus = "C";
      throw new KernelError("mount", `"${source}" on "${target}" (erofs)`, 5);
    }
    realMount(source, target, fstype, flags, data);
  };
  run();
  t.deepEqual(
    lines(k).filter((l) => l.includes("failed to")),
    [
      'storage-init: failed to mount the root /dev/dm-0: mount "/dev/dm-0" on "/sysroot" (erofs): EIO: dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)',
    ],
  );
});

test("boot() attaches the DDI that mkfs.erofs, veritysetup and sgdisk made", async (t) => {
  const made = await buildDisk({});
  const { k, run } = world(`roothash=${made.rootHash}`, { ddi: new Uint8Array(readFileSync(made.ddi)) });
  t.is(run().reason, "exec", k.logText());
  t.regex(k.dmTables[0], new RegExp(`^1 7:0 7:1 4096 4096 \\d+ 1 sha256 ${made.rootHash} [0-9a-f]{64}$`));
});

/**
 * What a boot that reached exec activated: exactly one dm table, of `hash`; the root erofs
 * mounted read-only from that device; no erofs larger than what verity covers (read from the
 * DDI as booted); the ESP mounted read-only, nodev, nosuid, noexec. "" when all holds.
 */
function bootedWrong(k: FakeKernel, ddi: Uint8Array, hash: string): string {
  if (k.dmTables.length !== 1) return `${k.dmTables.length} dm tables`;
  if (k.dmTables[0].split(" ")[8] !== hash) return `the table's root hash is not the pinned one: ${k.dmTables[0]}`;
  const roots = k.mountLog.filter((m) => m.fstype === "erofs");
  if (roots.length !== 1 || !/^\/dev\/dm-\d+$/.test(roots[0].source) || (roots[0].flags & 1) !== 1)
    return `the root was not mounted read-only from the verified device: ${JSON.stringify(roots)}`;
  const esp = k.mountLog.filter((m) => m.fstype === "vfat");
  if (esp.length !== 1 || (esp[0].flags & 15) !== 15) return `the ESP's mount: ${JSON.stringify(esp)}`;
  const erofsBytes = u32le(ddi, 1048576 + 1024 + 36) * 2 ** ddi[1048576 + 1024 + 12];
  const verified = Number(u64le(ddi, 2 * 1048576 + 72)) * u32le(ddi, 2 * 1048576 + 64);
  if (erofsBytes > verified) return `an erofs of ${erofsBytes} bytes over ${verified} verified`;
  return "";
}

test("boot() over 2,000 mutated disks ends at the verified root or in one fatal line and the action, never otherwise", (t) => {
  const next = rng(2026);
  const disk = worldDisk();
  // Where a hostile disk can say something: the disk's GPT, the DDI's GPT, the erofs and verity
  // superblocks, and anywhere in the DDI.
  const regions: Array<{ of: "disk" | "ddi"; start: number; length: number }> = [
    { of: "disk", start: 0, length: 17408 },
    { of: "disk", start: disk.length - 17408, length: 17408 },
    { of: "ddi", start: 0, length: 17408 },
    { of: "ddi", start: 1048576 + 1024, length: 128 },
    { of: "ddi", start: 2 * 1048576, length: 512 },
    { of: "ddi", start: 0, length: DDI.length },
  ];
  const outcomes = { exec: 0, fatal: 0 };
  for (let i = 0; i < 2000; i++) {
    const d = disk.slice();
    const ddi = DDI.slice();
    const r = regions[next() % regions.length];
    const bytes = r.of === "disk" ? d : ddi;
    for (let n = 1 + (next() % 8); n > 0; n--) bytes[r.start + (next() % r.length)] = next() & 0xff;
    // Half the time the GPTs are made consistent again, so that the parser, not the CRC, meets
    // the mutation; sometimes both headers of the disk are damaged at once.
    // (The high bits of the LCG: its low bits repeat with short periods.)
    if ((next() >>> 16) % 2 === 0) resealGpt(bytes);
    if ((next() >>> 16) % 16 === 0) {
      d[512 + (next() % 92)] ^= 0xff;
      d[d.length - 512 + (next() % 92)] ^= 0xff;
    }
    const { k, run } = world(`roothash=${HASH} storage_init.timeout=1 storage_init.failure_delay=0`, { ddi, disk: d });
    const stop = run();
    const fatal = lines(k).filter((l) => l.startsWith("storage-init: failed to "));
    const wrong = stop.reason === "exec" ? bootedWrong(k, ddi, HASH) : "";
    if (wrong !== "") t.fail(`mutation ${i} (${r.of} at ${r.start}) booted what it must not: ${wrong}`);
    else if (stop.reason === "exec" && fatal.length === 0) outcomes.exec++;
    else if (stop.reason === "halted" && fatal.length === 1 && k.reboots.length === 1) outcomes.fatal++;
    else t.fail(`mutation ${i} (${r.of} at ${r.start}): ${stop.reason}, ${fatal.length} fatal lines:\n${k.logText()}`);
  }
  t.is(outcomes.exec + outcomes.fatal, 2000);
  t.true(outcomes.exec > 100 && outcomes.fatal > 100, JSON.stringify(outcomes));
});

test("boot() names a disk whose GPT was refused or whose entries were left out first when the ESP never appears", (t) => {
  const { k, run } = W(`roothash=${HASH} storage_init.timeout=1 storage_init.failure_delay=0`, {
    disk: new Uint8Array(4 * 1048576),
  });
  run();
  const noGpt = '/dev/vda: no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)';
  t.deepEqual(beforeFatal(t, k, 5), [
    "storage-init: " + noGpt,
    "storage-init: no module for 1 device a storage driver could serve: pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
    "storage-init: modules loaded: virtio, virtio_pci, virtio_blk",
    "storage-init: block devices: vda, vda1",
    "storage-init: 3 modaliases seen",
    "storage-init: failed to find the ESP: " + noGpt + "; waited 1 s for the ESP; no DDI in memory",
  ]);
  // An ESP entry overlapping another is left out, and the line says so first.
  const overlapping = W(`roothash=${HASH} storage_init.timeout=1 storage_init.failure_delay=0`, {
    disk: writeGpt(4 * 1048576, 512, [
      { type: PartitionType.ESP, uuid: ESP_PART_UUID, first: 2048, last: 6143, name: "ESP" },
      { type: PartitionType.LINUX_DATA, uuid: ESP_PART_UUID, first: 6000, last: 7000, name: "data" },
    ]),
  });
  overlapping.run();
  t.deepEqual(beforeFatal(t, overlapping.k, 5), [
    "storage-init: /dev/vda: partitions 1 and 2 overlap",
    "storage-init: no module for 1 device a storage driver could serve: pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
    "storage-init: modules loaded: virtio, virtio_pci, virtio_blk",
    "storage-init: block devices: vda, vda1",
    "storage-init: 3 modaliases seen",
    "storage-init: failed to find the ESP: /dev/vda: partitions 1 and 2 overlap; waited 1 s for the ESP (the ESP partition type); no DDI in memory",
  ]);
});

const SIGNED = "5555aaaa".repeat(8);
const FP = fakeFingerprint("fake");
const signedDdi = (hash: string, trust: "signed" | "untrusted" | "corrupted", version?: string) =>
  syntheticDdi(hash, signatureJson(hash, trust), version === undefined ? undefined : `IMAGE_VERSION=${version}\n`);

test("boot() with storage_init.root_policy=signed takes the root hash from the DDI's signature the kernel accepts", (t) => {
  const { k, run } = world(`storage_init.root_policy=signed ${FAKE_PIN}`, { ddi: signedDdi(SIGNED, "signed") });
  t.is(run().reason, "exec", k.logText());
  const desc = "storage-init:root-verity:" + SIGNED.slice(0, 32);
  t.is(k.dmTables.length, 1);
  t.is(k.dmTables[0], `1 7:0 7:1 4096 4096 16 1 sha256 ${SIGNED} deadbeef 2 root_hash_sig_key_desc ${desc}`);
  t.is(k.keys.size, 0, "the signature's key is invalidated once the table is loaded");
  t.is(k.moduleParams.get("dm_verity"), "require_signatures=1");
  t.true(
    lines(k).some((l) =>
      l.endsWith(`the kernel accepted the signature of root hash ${SIGNED} (certificate SHA-256 ${FP})`),
    ),
  );
});

for (const [trust, errno, meaning] of [
  ["untrusted", "ENOKEY", "no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it"],
  ["corrupted", "EKEYREJECTED", "it does not verify: not over this root hash, or altered"],
] as const) {
  test(`boot() refuses a DDI whose signature the kernel rejects (${errno}), and never activates it unsigned`, (t) => {
    const k = failure(
      t,
      `storage_init.root_policy=signed ${FAKE_PIN} storage_init.failure_delay=0`,
      `storage-init: failed to set up the root device: the kernel refused the signature of root hash ${SIGNED} (certificate SHA-256 ${FP}): ${errno}, ${meaning}`,
      { ddi: signedDdi(SIGNED, trust) },
    );
    t.is(k.dmTables.length, 0);
    t.is(k.keys.size, 0);
    t.is(k.mounts.filter((m) => m.fstype === "erofs").length, 0);
  });
}

test("boot() with storage_init.root_policy=signed refuses a DDI without a signature partition", (t) => {
  const k = failure(
    t,
    `storage_init.root_policy=signed ${FAKE_PIN} storage_init.failure_delay=0`,
    "storage-init: failed to open the DDI /EFI/storage-init/root.raw on /dev/vda1: the DDI has no root-verity-sig partition for x86-64, and storage_init.root_policy=signed takes only signed roots",
    { ddi: syntheticDdi(SIGNED) },
  );
  t.is(k.dmTables.length, 0);
});

test("boot() pinned by roothash= has the kernel check the signature a DDI carries, and names the key it trusts", (t) => {
  const pinned = world(`roothash=${SIGNED}`, { ddi: signedDdi(SIGNED, "signed") });
  t.is(pinned.run().reason, "exec", pinned.k.logText());
  t.deepEqual(pinned.k.dmTables, [
    `1 7:0 7:1 4096 4096 16 1 sha256 ${SIGNED} deadbeef 2 root_hash_sig_key_desc storage-init:root-verity:${SIGNED.slice(0, 32)}`,
  ]);
  t.true(
    lines(pinned.k).some((l) =>
      l.endsWith(`; the kernel accepted the signature of root hash ${SIGNED} (certificate SHA-256 ${FP})`),
    ),
  );
  t.false(pinned.k.logText().includes("without the signature"));
});

for (const [trust, errno, meaning] of [
  ["untrusted", "ENOKEY", "no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it"],
  ["corrupted", "EKEYREJECTED", "it does not verify: not over this root hash, or altered"],
] as const) {
  test(`boot() pinned by roothash= activates the pinned hash without a signature the kernel refuses (${errno}), with one warning`, (t) => {
    const { k, run } = world(`roothash=${SIGNED}`, { ddi: signedDdi(SIGNED, trust) });
    t.is(run().reason, "exec", k.logText());
    t.deepEqual(k.dmTables, [`1 7:0 7:1 4096 4096 16 1 sha256 ${SIGNED} deadbeef`], "the pinned hash, no signature");
    t.is(k.keys.size, 0, "the refused signature's key is invalidated");
    const warned = lines(k).filter((l) => l.includes("refused the signature"));
    t.deepEqual(warned, [
      `storage-init: the kernel refused the signature of root hash ${SIGNED} (certificate SHA-256 ${FP}): ${errno}, ${meaning}; roothash= pins the root: activating it without the signature`,
    ]);
    t.false(
      lines(k).some((l) => l.includes("the kernel accepted")),
      "not called signed",
    );
  });

  test(`boot() pinned by roothash= with storage_init.root_policy=signed refuses a signature the kernel refuses (${errno})`, (t) => {
    const k = failure(
      t,
      `roothash=${SIGNED} storage_init.root_policy=signed ${FAKE_PIN} storage_init.failure_delay=0`,
      `storage-init: failed to set up the root device: the kernel refused the signature of root hash ${SIGNED} (certificate SHA-256 ${FP}): ${errno}, ${meaning}`,
      { ddi: signedDdi(SIGNED, trust) },
    );
    t.is(k.dmTables.length, 0, "nothing activated");
    t.is(k.keys.size, 0);
  });
}

const V1 = "1111aaaa".repeat(8);
const V2 = "2222bbbb".repeat(8);
const V3 = "3333cccc".repeat(8);
const abDir = (v2: "signed" | "corrupted") =>
  new Map([
    ["/EFI/storage-init/root.v/root_1.9.raw", signedDdi(V1, "signed", "1.9")],
    ["/EFI/storage-init/root.v/root_1.10_x86-64.raw", signedDdi(V2, v2, "1.10")],
    ["/EFI/storage-init/root.v/root_2.0+0-3.raw", signedDdi(V3, "signed", "2.0")],
    ["/EFI/storage-init/root.v/root_3.0_arm64.raw", signedDdi(V3, "signed", "3.0")],
    ["/EFI/storage-init/root.v/notes.txt", new Uint8Array(1)],
  ]);
const AB = `storage_init.root_policy=signed ${FAKE_PIN} storage_init.ddi=/EFI/storage-init/root.v/`;

test("boot() picks the newest signed DDI of a vpick directory, skipping other architectures and spent tries", (t) => {
  const { k, run } = world(AB, { ddi: DDI, espFiles: abDir("signed") });
  t.is(run().reason, "exec", k.logText());
  t.is(k.dmTables.length, 1);
  t.true(k.dmTables[0].includes(` ${V2} `), "1.10 is newer than 1.9");
  const log = lines(k);
  t.true(
    log.includes(
      "storage-init: /EFI/storage-init/root.v/: 3 candidates, newest first: /EFI/storage-init/root.v/root_1.10_x86-64.raw, /EFI/storage-init/root.v/root_1.9.raw, /EFI/storage-init/root.v/root_2.0+0-3.raw",
    ),
    log.join("\n"),
  );
  t.true(log.includes("storage-init: passed over /EFI/storage-init/root.v/root_3.0_arm64.raw: for arm64, not x86-64"));
  t.true(log.includes("storage-init: passed over /EFI/storage-init/root.v/notes.txt: not named root_VERSION.raw"));
  t.true(
    log.includes("storage-init: root from /EFI/storage-init/root.v/root_1.10_x86-64.raw on /dev/vda1 (version 1.10)"),
  );
});

test("boot() falls back to the older DDI when the newest one's signature is rejected", (t) => {
  const { k, run } = world(AB, { ddi: DDI, espFiles: abDir("corrupted") });
  t.is(run().reason, "exec", k.logText());
  t.is(k.dmTables.length, 1);
  t.true(k.dmTables[0].includes(` ${V1} `));
  const log = lines(k);
  t.true(
    log.includes(
      `storage-init: passed over /dev/vda1 /EFI/storage-init/root.v/root_1.10_x86-64.raw: the kernel refused the signature of root hash ${V2} (certificate SHA-256 ${FP}): EKEYREJECTED, it does not verify: not over this root hash, or altered`,
    ),
    log.join("\n"),
  );
  t.true(
    log.includes(
      "storage-init: root from /EFI/storage-init/root.v/root_1.9.raw on /dev/vda1 (version 1.9) after 1 passed over",
    ),
  );
  t.is(k.keys.size, 0);
});

test("boot() pinned by roothash= takes the DDI of a vpick directory whose partitions it names", (t) => {
  const { k, run } = world(`roothash=${V1} storage_init.ddi=/EFI/storage-init/root.v`, {
    ddi: DDI,
    espFiles: abDir("signed"),
  });
  t.is(run().reason, "exec", k.logText());
  t.true(k.dmTables[0].includes(` ${V1} `));
  t.true(
    lines(k).includes(
      `storage-init: passed over /dev/vda1 /EFI/storage-init/root.v/root_1.10_x86-64.raw: root partition UUID ${uuidFromHex(V2.slice(0, 32))} does not match roothash= (expected ${uuidFromHex(V1.slice(0, 32))})`,
    ),
  );
});

test("boot() names every candidate's reason when no DDI of the directory is usable", (t) => {
  failure(
    t,
    `${AB} storage_init.failure_delay=0`,
    "storage-init: failed to open the DDI /EFI/storage-init/root.v/: none of the 2 DDIs is usable: " +
      `/dev/vda1 /EFI/storage-init/root.v/root_2.raw: the kernel refused the signature of root hash ${V2} (certificate SHA-256 ${FP}): ENOKEY, no key in the kernel's trusted keyrings (built-in, secondary, MOK) made it; ` +
      "/dev/vda1 /EFI/storage-init/root.v/root_1.raw: the DDI has no root-verity-sig partition for x86-64, and storage_init.root_policy=signed takes only signed roots",
    {
      ddi: DDI,
      espFiles: new Map([
        ["/EFI/storage-init/root.v/root_1.raw", syntheticDdi(V1)],
        ["/EFI/storage-init/root.v/root_2.raw", signedDdi(V2, "untrusted")],
      ]),
    },
  );
});

test("boot() goes on to the next path of storage_init.ddi= when a vpick directory is missing", (t) => {
  const { k, run } = W(`roothash=${HASH} storage_init.ddi=/EFI/os/root.v/,/EFI/storage-init/root.raw`);
  t.is(run().reason, "exec", k.logText());
  t.true(
    lines(k).some(
      (l) => l === 'storage-init: passed over /EFI/os/root.v/: open "/run/storage-init/esp/EFI/os/root.v": ENOENT',
    ),
    k.logText(),
  );
  t.true(lines(k).includes("storage-init: root from /EFI/storage-init/root.raw on /dev/vda1 after 1 passed over"));
});

test("boot() names a vpick directory that holds no DDI for this architecture", (t) => {
  failure(
    t,
    `roothash=${HASH} storage_init.ddi=/EFI/os/root.v/ storage_init.failure_delay=0`,
    "storage-init: failed to open the DDI /EFI/os/root.v/ on /dev/vda1: /EFI/os/root.v/ holds no DDI for x86-64",
    { espFiles: new Map([["/EFI/os/root.v/root_2_arm64.raw", DDI]]) },
  );
});

// ---- what the README promises of the command line, in whole boots ----

const API_ONLY = ["proc", "sysfs", "devtmpfs", "tmpfs"];

for (const [cmdline, problem] of [
  [`roothash=${HASH} rootfstype=ext4`, "rootfstype=ext4 is not supported; supported: erofs"],
  [
    `roothash=${HASH} storage_init.ddi=EFI/root.raw`,
    "storage_init.ddi= takes absolute paths on the ESP without '..': \"EFI/root.raw\"",
  ],
  [`roothash=xyz`, 'roothash= is not hexadecimal: "xyz"'],
  [
    `storage_init.root_policy=signed ${FAKE_PIN} systemd.verity=0`,
    "systemd.verity=0 contradicts storage_init.root_policy=signed",
  ],
  [
    `roothash=xyz rootfstype=ext4`,
    'roothash= is not hexadecimal: "xyz"; rootfstype=ext4 is not supported; supported: erofs',
  ],
  [
    `roothash=${HASH} storage_init.min_version=1/2`,
    'storage_init.min_version="1/2": "1/2" has a character outside a-z A-Z 0-9 . - ~ ^',
  ],
] as const) {
  test(`boot() with an invalid value stops at the command line, nothing but the API file systems mounted: ${problem}`, (t) => {
    const k = failure(
      t,
      `${cmdline} storage_init.failure_delay=0`,
      `storage-init: failed to read the kernel command line: kernel command line: ${problem}`,
    );
    t.deepEqual(
      k.mounts.map((m) => m.fstype),
      API_ONLY,
    );
    t.deepEqual(k.modulesLoaded, [], "no driver loaded, no disk read");
    t.is(k.dmTables.length, 0);
  });
}

test("boot() passes rootflags= to the root's mount, read-only", (t) => {
  const { k, run } = W(`roothash=${HASH} rootflags=noacl,user_xattr`);
  t.is(run().reason, "exec", k.logText());
  const root = k.mountLog.find((m) => m.fstype === "erofs");
  t.like(root, { source: "/dev/dm-0", target: "/sysroot", data: "noacl,user_xattr" });
  t.is((root?.flags ?? 0) & 1, 1, "MS_RDONLY");
});

test("boot() with storage_init.debug logs the verity table and each modalias match; without it, neither", (t) => {
  const debug = W(`roothash=${HASH} storage_init.debug`);
  t.is(debug.run().reason, "exec");
  const on = lines(debug.k);
  t.true(on.includes(`storage-init: verity table: 1 7:0 7:1 4096 4096 16 1 sha256 ${HASH} deadbeef`), on.join("\n"));
  t.true(
    on.some((l) => /^storage-init: .*virtio_pci.*pci:v00001AF4d00001001/.test(l)),
    on.join("\n"),
  );
  const quiet = W(`roothash=${HASH}`);
  t.is(quiet.run().reason, "exec");
  t.false(lines(quiet.k).some((l) => l.includes("verity table") || l.includes("pci:v00001AF4d00001001")));
});

test("an init built with --root-policy signed refuses systemd.verity=0 in a whole boot", async (t) => {
  const m = await importBuiltWith<typeof import("./fake_world.js")>("tests/fake_world.ts", "signed", "", [
    fakeFingerprint("fake"),
  ]);
  const { k, run } = m.world("systemd.verity=0 storage_init.failure_delay=0", { ddi: DDI });
  t.is(run().reason, "halted");
  t.deepEqual(
    m.logLines(k).filter((l) => l.startsWith("storage-init: failed to ")),
    [
      "storage-init: failed to read the kernel command line: kernel command line: systemd.verity=0 contradicts storage_init.root_policy=signed",
    ],
  );
  t.deepEqual(
    k.mounts.map((x) => x.fstype),
    API_ONLY,
  );
});

test("boot() over 1,000 mutated signed A/B directories, names and command lines takes only a root the pinned key signed", (t) => {
  const next = rng(777);
  const hashes = [V1, V2, V3];
  const words = [
    "storage_init.min_version=2",
    "storage_init.min_version=9",
    "storage_init.min_version=",
    "systemd.verity=0",
    `roothash=${V2}`,
    "roothash=zz",
    "storage_init.ddi=/EFI/storage-init/root.v/,/EFI/other.raw",
    "storage_init.certificate_fingerprint=" + "ab".repeat(32),
    "rootfstype=ext4",
    "init=/sbin/init",
  ];
  const outcomes = { exec: 0, fatal: 0 };
  for (let i = 0; i < 1000; i++) {
    const files = new Map<string, Uint8Array>();
    for (let v = 0; v < 3; v++) {
      const ddi = signedDdi(hashes[v], "signed", String(v + 1));
      // The signature partition's JSON (at 3 MiB), or the image's os-release, mutated.
      const at = (next() >>> 16) % 3 === 0 ? 3 * 1048576 : (next() >>> 16) % 2 === 0 ? 1048576 + 8192 : -1;
      if (at >= 0)
        for (let n = 1 + ((next() >>> 16) % 4); n > 0; n--) ddi[at + ((next() >>> 16) % 200)] = next() >>> 24;
      // Its name: the right version, another one, or something that is not a version at all.
      const names = [
        `root_${v + 1}.raw`,
        `root_${(next() >>> 16) % 5}.raw`,
        `root_${v + 1}+${(next() >>> 16) % 3}.raw`,
        "root_.raw",
      ];
      files.set(`/EFI/storage-init/root.v/${names[(next() >>> 16) % names.length]}`, ddi);
    }
    let cmdline = `storage_init.root_policy=signed ${FAKE_PIN} storage_init.ddi=/EFI/storage-init/root.v/ storage_init.failure_delay=0`;
    if ((next() >>> 16) % 3 === 0) cmdline += " " + words[(next() >>> 16) % words.length];
    const { k, run } = W(cmdline, { espFiles: files });
    const stop = run();
    const fatal = lines(k).filter((l) => l.startsWith("storage-init: failed to "));
    if (stop.reason === "exec") {
      // The root mounted is the last table's, one of the signed hashes, with its signature named.
      const table = k.dmTables[k.dmTables.length - 1] ?? "";
      const words8 = table.split(" ");
      const json = JSON.parse(new TextDecoder().decode(k.nodes.get("/run/storage-init/root.json")?.data));
      if (
        fatal.length !== 0 ||
        !hashes.includes(words8[8]) ||
        !table.includes("root_hash_sig_key_desc") ||
        json.rootHash !== words8[8] ||
        json.signer !== fakeFingerprint("fake") ||
        !json.path.includes(`root_${json.imageVersion}`) ||
        k.mounts.filter((m) => m.fstype === "erofs").length !== 1
      )
        t.fail(`case ${i} booted what it must not: ${cmdline}\n${[...files.keys()].join(" ")}\n${k.logText()}`);
      else outcomes.exec++;
    } else if (
      stop.reason === "halted" &&
      fatal.length === 1 &&
      k.mounts.filter((m) => m.fstype === "erofs").length === 0
    )
      outcomes.fatal++;
    else t.fail(`case ${i}: ${stop.reason}, ${fatal.length} fatal lines:\n${k.logText()}`);
  }
  t.true(outcomes.exec > 100 && outcomes.fatal > 100, JSON.stringify(outcomes));
});
