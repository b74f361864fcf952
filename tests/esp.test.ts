import test from "ava";
import { ESP_PART_UUID } from "../qemu/test_disk.js";
import { PartitionType } from "../lib/facts.js";
import {
  espName,
  espSelector,
  findEsps,
  mountEsp,
  waitForEsp,
  LOADER_DEVICE_PART_UUID,
  newEspSearch,
  parseEspSelector,
  parseLoaderDevicePartUuid,
  readLoaderSelector,
  selects,
  typeSelector,
  espTimeout,
} from "../runtime/esp.js";
import type { EspSelector } from "../runtime/esp.js";
import type { GptPartition } from "../runtime/gpt.js";
import { Log } from "../runtime/log.js";
import { parseModuleTable } from "../runtime/module_table.js";
import { ModuleLoader } from "../runtime/modules.js";
import type { Coldplug } from "../runtime/coldplug.js";
import { FakeKernel } from "./fake_kernel.js";
import { logLines, TABLE } from "./fake_world.js";
import { rng, writeGpt } from "./helpers.js";
import { InitError, ParseError } from "../lib/errors.js";
import { Errno, KernelError } from "../syscalls/errno.js";

const A = ESP_PART_UUID;
const B = PartitionType.LINUX_DATA;

function efivar(guid: string): Uint8Array {
  const b = new Uint8Array(4 + 2 * guid.length + 2);
  b[0] = 6;
  for (let i = 0; i < guid.length; i++) b[4 + 2 * i] = guid.charCodeAt(i);
  return b;
}

test("parseLoaderDevicePartUuid() reads systemd-boot's UTF-16 GUID", (t) => {
  t.is(parseLoaderDevicePartUuid(efivar(A.toUpperCase())), A);
  t.is(parseLoaderDevicePartUuid(efivar("not-a-guid")), undefined);
  t.is(parseLoaderDevicePartUuid(new Uint8Array(3)), undefined);
  const next = rng(3);
  for (let i = 0; i < 10000; i++) {
    const b = efivar(A);
    b[4 + (next() % 72)] = next() & 0xff;
    const r = parseLoaderDevicePartUuid(b);
    if (r !== undefined) t.regex(r, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  }
});

test("parseEspSelector() takes PARTUUID=, PARTLABEL= and /dev/ paths only", (t) => {
  t.deepEqual(parseEspSelector("PARTUUID=" + A.toUpperCase()), {
    kind: "partuuid",
    value: A,
    source: "storage_init.esp=PARTUUID=" + A.toUpperCase(),
  });
  t.like(parseEspSelector("PARTLABEL=EFI system"), { kind: "partlabel", value: "EFI system" });
  t.like(parseEspSelector("/dev/nvme0n1p1"), { kind: "device", value: "/dev/nvme0n1p1" });
  t.is(
    (t.throws(() => parseEspSelector("LABEL=ESP"), { any: true }) as InitError).message,
    'storage_init.esp= must be PARTUUID=<uuid>, PARTLABEL=<label> or /dev/<node>: "LABEL=ESP"',
  );
});

/** The first candidate, as the boot tries it. */
const findEsp = (...a: Parameters<typeof findEsps>) => findEsps(...a)?.[0];

function twoDisks(): FakeKernel {
  const k = new FakeKernel();
  const d1 = writeGpt(4 * 1048576, 512, [{ type: B, uuid: B, first: 2048, last: 4095, name: "data" }]);
  const d2 = writeGpt(4 * 1048576, 512, [
    { type: B, uuid: "11111111-1111-1111-1111-111111111111", first: 2048, last: 3071, name: "x" },
    { type: PartitionType.ESP, uuid: A, first: 3072, last: 6143, name: "EFI system" },
  ]);
  k.addDisk("nvme0n1", d1, [[1, 1048576, 1048576]], (n) => "nvme0n1p" + n);
  k.addDisk(
    "nvme1n1",
    d2,
    [
      [1, 1048576, 524288],
      [2, 1572864, 1572864],
    ],
    (n) => "nvme1n1p" + n,
  );
  k.addDisk("loop0", new Uint8Array(4096));
  k.addFile("/sys/class/block/nvme1n10/size", "8\n"); // a name that starts like nvme1n1 but is another disk
  return k;
}

test("findEsp() by type, PARTUUID, PARTLABEL and device path", (t) => {
  const k = twoDisks();
  const log = new Log(k);
  t.like(findEsp(k, log, { kind: "type", value: "", source: "type" }, newEspSearch(), Infinity), {
    device: "/dev/nvme1n1p2",
    disk: "/dev/nvme1n1",
    offset: 1572864,
    size: 1572864,
    partUuid: A,
  });
  t.like(findEsp(k, log, { kind: "partuuid", value: A, source: "x" }, newEspSearch(), Infinity), {
    device: "/dev/nvme1n1p2",
  });
  t.is(
    findEsp(k, log, { kind: "partuuid", value: B, source: "x" }, newEspSearch(), Infinity),
    undefined,
    "the PARTUUID of a partition that is not of the ESP type",
  );
  t.true(
    logLines(k).includes("storage-init: /dev/nvme0n1: partition 1 has the ESP's PARTUUID but not its type: not taken"),
  );
  t.like(findEsp(k, log, { kind: "partlabel", value: "EFI system", source: "x" }, newEspSearch(), Infinity), {
    device: "/dev/nvme1n1p2",
  });
  t.like(findEsp(k, log, { kind: "device", value: "/dev/nvme0n1p1", source: "x" }, newEspSearch(), Infinity), {
    device: "/dev/nvme0n1p1",
  });
  t.is(
    findEsp(
      k,
      log,
      { kind: "partuuid", value: "22222222-2222-2222-2222-222222222222", source: "x" },
      newEspSearch(),
      Infinity,
    ),
    undefined,
  );
  t.is(findEsp(k, log, { kind: "device", value: "/dev/sdz9", source: "x" }, newEspSearch(), Infinity), undefined);
});

test("findEsps() returns every matching partition, in the order of the disks' names", (t) => {
  const k = twoDisks();
  // A cloned disk: the same ESP, the same PARTUUID, on a disk that sorts first.
  const clone = writeGpt(4 * 1048576, 512, [
    { type: PartitionType.ESP, uuid: A, first: 2048, last: 4095, name: "ESP" },
  ]);
  k.addDisk("nvme0n0", clone, [[1, 1048576, 1048576]], (n) => "nvme0n0p" + n);
  const log = new Log(k);
  const names = (sel: EspSelector) => (findEsps(k, log, sel, newEspSearch(), Infinity) ?? []).map((e) => e.device);
  t.deepEqual(names({ kind: "type", value: "", source: "type" }), ["/dev/nvme0n0p1", "/dev/nvme1n1p2"]);
  t.deepEqual(names({ kind: "partuuid", value: A, source: "x" }), ["/dev/nvme0n0p1", "/dev/nvme1n1p2"]);
  t.deepEqual(names({ kind: "partlabel", value: "ESP", source: "x" }), ["/dev/nvme0n0p1"]);
});

test("readLoaderSelector() uses LoaderDevicePartUUID when present", (t) => {
  const k = twoDisks();
  t.is(readLoaderSelector(k), undefined);
  k.addFile(LOADER_DEVICE_PART_UUID, efivar(A.toUpperCase()));
  t.deepEqual(readLoaderSelector(k), { kind: "partuuid", value: A, source: "LoaderDevicePartUUID" });
});

test("parseEspSelector() on 10,000 random strings returns a selector or an ParseError", (t) => {
  const next = rng(17);
  const alphabet = "PARTUID=LBE/dev.-_0123456789abcdef \u00e9";
  for (let i = 0; i < 10000; i++) {
    let s = ["PARTUUID=", "PARTLABEL=", "/dev/", ""][next() % 4];
    for (let j = 0; j < next() % 30; j++) s += alphabet[next() % alphabet.length];
    try {
      const sel = parseEspSelector(s);
      t.true(sel.kind === "partuuid" || sel.kind === "partlabel" || sel.kind === "device");
    } catch (e) {
      t.true(e instanceof ParseError);
    }
  }
});

test("findEsp() reads a disk again after an I/O error, and remembers a disk without a GPT", (t) => {
  const k = new FakeKernel();
  const disk = writeGpt(4 * 1048576, 512, [{ type: PartitionType.ESP, uuid: A, first: 2048, last: 4095, name: "ESP" }]);
  k.addDisk("vda", disk, [[1, 1048576, 1048576]]);
  k.addDisk("vdb", new Uint8Array(1048576));
  const pread = k.pread.bind(k);
  let failing = true;
  const reads: string[] = [];
  k.pread = (fd, buf, offset) => {
    const path = (k as unknown as { fds: Map<number, { path: string }> }).fds.get(fd)?.path ?? "";
    reads.push(path);
    if (failing && path === "/dev/vda") throw new KernelError("pread", "fd " + fd, Errno.EIO);
    return pread(fd, buf, offset);
  };
  const log = new Log(k);
  const state = newEspSearch();
  const sel = { kind: "type" as const, value: "", source: "type" };
  t.is(findEsp(k, log, sel, state, Infinity), undefined);
  failing = false;
  const vdbReads = reads.filter((r) => r === "/dev/vdb").length;
  t.like(findEsp(k, log, sel, state, Infinity), { device: "/dev/vda1" });
  t.is(reads.filter((r) => r === "/dev/vdb").length, vdbReads, "vdb's missing GPT was not read again");
});

test("findEsp() reaches the ESP by its range when the kernel's partition is another, or will not come", (t) => {
  const esp = writeGpt(4 * 1048576, 512, [{ type: PartitionType.ESP, uuid: A, first: 2048, last: 4095, name: "ESP" }]);
  // An MBR partition beside the GPT gave the kernel another vda1.
  const mbr = new FakeKernel();
  mbr.addDisk("vda", esp, [[1, 512 * 63, 1048576]]);
  t.like(findEsp(mbr, new Log(mbr), { kind: "type", value: "", source: "type" }, newEspSearch(), Infinity), {
    device: "",
    disk: "/dev/vda",
    offset: 1048576,
    size: 1048576,
  });
  t.regex(mbr.logText(), /\/dev\/vda1 is not the GPT's partition 1 \(bytes 32256\+1048576\): using the GPT's range/);
  // A 512-byte GPT on a disk of 4096-byte sectors: the kernel makes no partitions.
  const big = new FakeKernel();
  big.addDisk("vda", esp);
  big.addFile("/sys/class/block/vda/queue/logical_block_size", "4096\n");
  t.like(findEsp(big, new Log(big), { kind: "type", value: "", source: "type" }, newEspSearch(), Infinity), {
    device: "",
    offset: 1048576,
  });
  // The same disk in 512-byte sectors: wait for the node.
  const late = new FakeKernel();
  late.addDisk("vda", esp);
  late.addFile("/sys/class/block/vda/queue/logical_block_size", "512\n");
  t.is(findEsp(late, new Log(late), { kind: "type", value: "", source: "type" }, newEspSearch(), Infinity), undefined);
});

test("findEsp() skips a bad entry beside the ESP, and the timeout line names a skipped ESP", (t) => {
  const k = new FakeKernel();
  const disk = writeGpt(4 * 1048576, 512, [
    { type: B, uuid: B, first: 2048, last: 99999, name: "past the end" },
    { type: PartitionType.ESP, uuid: A, first: 3072, last: 4095, name: "ESP" },
  ]);
  k.addDisk("vda", disk, [[2, 3072 * 512, 1024 * 512]]);
  const log = new Log(k);
  t.like(findEsp(k, log, { kind: "type", value: "", source: "type" }, newEspSearch(), Infinity), {
    device: "/dev/vda2",
  });
  t.regex(k.logText(), /\/dev\/vda: GPT entries ignored: partition 1 \(type [0-9a-f-]{36}\) spans LBA 2048\.\.99999, /);
});

test("findEsp() reads no further disk once the deadline has passed", (t) => {
  const k = new FakeKernel();
  k.addDisk("vda", new Uint8Array(1048576));
  const state = newEspSearch();
  t.is(findEsp(k, new Log(k), { kind: "type", value: "", source: "type" }, state, k.now - 1), undefined);
  t.is(state.gpts.size, 0, "vda was not read");
});

test("selects() matches an ESP-typed GPT entry by PARTUUID, PARTLABEL or the type alone; a device path matches none", (t) => {
  const p: GptPartition = {
    number: 1,
    typeGuid: PartitionType.ESP,
    partGuid: ESP_PART_UUID,
    name: "EFI",
    offset: 1048576,
    size: 1048576,
    attrsHigh: 0,
    firstLba: 2048,
    lastLba: 4095,
  };
  t.true(selects(typeSelector(), p));
  t.true(selects(parseEspSelector("PARTUUID=" + ESP_PART_UUID.toUpperCase()), p));
  t.true(selects(parseEspSelector("PARTLABEL=EFI"), p));
  t.false(selects(parseEspSelector("PARTLABEL=efi"), p));
  t.false(selects(parseEspSelector("/dev/vda1"), p));
  const other = { ...p, typeGuid: PartitionType.ROOT_X86_64 };
  t.false(selects(typeSelector(), other));
  t.false(selects(parseEspSelector("PARTUUID=" + ESP_PART_UUID), other), "a cloned PARTUUID on another type");
  t.false(selects(parseEspSelector("PARTLABEL=EFI"), other));
});

const SEEN = {
  modaliases: 20,
  loaded: ["virtio", "virtio_pci"],
  failures: [],
  unmatched: [],
  leftOut: 17,
  blockDevices: ["none"],
};
const WAITED = { seconds: 30, what: "storage_init.esp=PARTUUID=5eb05eb0-1d2c-4e3f-8a9b-0c1d2e3f4a5b" };
const UNTIL = "; waited 30 s for the ESP (storage_init.esp=PARTUUID=5eb05eb0-1d2c-4e3f-8a9b-0c1d2e3f4a5b)";

test("espTimeout() puts the likeliest cause first: a disk's GPT, then a module that failed, then an unmatched controller", (t) => {
  const disks = ["/dev/vda: partitions 1 and 2 overlap", "/dev/vdb: no GPT: no signature"];
  const failures = ['load module nvme (for pci:v...): "/modules/nvme.ko" is missing from the initramfs'];
  const unmatched = Array.from({ length: 10 }, (_, i) => "of:Nmmc" + i + "T(null)Cvendor,sdhci");
  const all = espTimeout(WAITED, disks, { ...SEEN, failures, unmatched });
  t.is(all.message, "/dev/vda: partitions 1 and 2 overlap (and 1 more disks)" + UNTIL);
  t.deepEqual(all.details, [
    "/dev/vda: partitions 1 and 2 overlap",
    "/dev/vdb: no GPT: no signature",
    "module failed: " + failures[0],
    "no module for 10 devices a storage driver could serve: " + unmatched.slice(0, 8).join(", ") + " and 2 more",
    "modules loaded: virtio, virtio_pci",
    "block devices: none",
    "20 modaliases seen; 17 of devices no storage driver serves not listed",
  ]);
  t.is(
    espTimeout(WAITED, [], { ...SEEN, failures, unmatched }).message,
    failures[0] + "; waited 30 s for the ESP",
    "the selector goes when both do not fit",
  );
  t.is(
    espTimeout(WAITED, [], { ...SEEN, unmatched }).message,
    "no module for of:Nmmc0T(null)Cvendor,sdhci (and 9 more devices)" + UNTIL,
  );
  t.is(espTimeout(WAITED, [], SEEN).message, "no disk appeared" + UNTIL);
  t.is(
    espTimeout(WAITED, [], { ...SEEN, blockDevices: ["vda", "vda1"] }).message,
    "no partition of vda, vda1 is it" + UNTIL,
  );
});

test("espTimeout() keeps the fatal line near 200 characters, a long cause cut in the middle so that its errno stays", (t) => {
  const long = "/dev/sda: " + "partition 7 ends past the last usable LBA; ".repeat(5) + "EIO";
  const m = "storage-init: failed to find the ESP: " + espTimeout(WAITED, [long], SEEN).message;
  t.true(m.length <= 200, `${m.length}: ${m}`);
  t.regex(
    m,
    /^storage-init: failed to find the ESP: \/dev\/sda: partition 7 .*\.\.\..*; EIO; waited 30 s for the ESP$/,
  );
});

test("espSelector() on an EFI machine mounts efivarfs read-only, nosuid, nodev, noexec, then reads LoaderDevicePartUUID", (t) => {
  const k = twoDisks();
  k.addFile("/sys/firmware/efi/fw_platform_size", "64\n");
  k.onMount = (m) => {
    if (m.fstype === "efivarfs")
      k.addFile("/sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f", efivar(A));
  };
  const table = parseModuleTable("storage-init-modules 2 6.1.0-test\n");
  const loader = new ModuleLoader(k, new Log(k), table, []);
  t.like(espSelector(k, new Log(k), undefined, loader), { kind: "partuuid", value: A });
  const m = k.mountLog.find((x) => x.fstype === "efivarfs");
  // RDONLY 1 | NOSUID 2 | NODEV 4 | NOEXEC 8 (uapi linux/mount.h)
  t.like(m, { source: "efivarfs", target: "/sys/firmware/efi/efivars", flags: 1 | 2 | 4 | 8, data: "" });
});

/** A loader over TABLE with the efivarfs module in an `efi` group, as the build writes it for EFI machines. */
function efiLoader(k: FakeKernel): ModuleLoader {
  for (const f of ["efivarfs", "loop", "fat", "vfat"]) k.addFile("/modules/" + f + ".ko", "\x7fELF");
  return new ModuleLoader(k, new Log(k), parseModuleTable(TABLE + "m efivarfs efivarfs.ko -\ng efi efivarfs\n"), []);
}

test("espSelector(): the command line first; on an EFI machine the efi modules and efivarfs, then the variable; else the type", (t) => {
  const configured = twoDisks();
  configured.addFile("/sys/firmware/efi/fw_platform_size", "64\n");
  t.deepEqual(espSelector(configured, new Log(configured), "PARTUUID=" + B, efiLoader(configured)), {
    kind: "partuuid",
    value: B,
    source: "storage_init.esp=PARTUUID=" + B,
  });
  t.deepEqual(configured.mountLog, [], "the variable is not read");
  const bios = twoDisks();
  t.deepEqual(espSelector(bios, new Log(bios), undefined, efiLoader(bios)), typeSelector());
  t.deepEqual(bios.mountLog, []);
  t.deepEqual(bios.modulesLoaded, []);
  const noVariable = twoDisks();
  noVariable.addFile("/sys/firmware/efi/fw_platform_size", "64\n");
  t.deepEqual(espSelector(noVariable, new Log(noVariable), undefined, efiLoader(noVariable)), typeSelector());
  t.deepEqual(noVariable.modulesLoaded, ["efivarfs"]);
  const noEfivarfs = twoDisks();
  noEfivarfs.addFile("/sys/firmware/efi/fw_platform_size", "64\n");
  noEfivarfs.mount = () => {
    throw new KernelError("mount", '"efivarfs"', Errno.ENOENT);
  };
  t.deepEqual(espSelector(noEfivarfs, new Log(noEfivarfs), undefined, efiLoader(noEfivarfs)), typeSelector());
  t.deepEqual(logLines(noEfivarfs).slice(-1), [
    'storage-init: cannot mount efivarfs: mount "efivarfs": ENOENT; looking for the ESP by type',
  ]);
});

test("readLoaderSelector() ignores a LoaderDevicePartUUID that is not a GUID", (t) => {
  const k = twoDisks();
  k.addFile(LOADER_DEVICE_PART_UUID, efivar("not-a-guid"));
  t.is(readLoaderSelector(k), undefined);
});

test("parseEspSelector() refuses a /dev/ path that climbs out with /../, and quotes at most 80 characters of what it refuses", (t) => {
  t.throws(() => parseEspSelector("/dev/../etc/x"), {
    any: true,
    message: 'storage_init.esp= must be PARTUUID=<uuid>, PARTLABEL=<label> or /dev/<node>: "/dev/../etc/x"',
  });
  t.throws(() => parseEspSelector("Y".repeat(100)), {
    any: true,
    message: `storage_init.esp= must be PARTUUID=<uuid>, PARTLABEL=<label> or /dev/<node>: "${"Y".repeat(80)}"`,
  });
});

test("findEsps() warns of nothing on sound disks, and of a damaged primary and entries left out in full", (t) => {
  const k = twoDisks();
  const log = new Log(k);
  for (const sel of [typeSelector(), parseEspSelector("PARTUUID=" + A), parseEspSelector("PARTLABEL=" + B)])
    findEsps(k, log, sel, newEspSearch(), Infinity);
  t.deepEqual(logLines(k), [], "a label that is another partition's PARTUUID is not one");
  const damaged = new FakeKernel();
  const disk = writeGpt(4 * 1048576, 512, [
    { type: B, uuid: B, first: 2048, last: 99999, name: "past the end" },
    { type: B, uuid: B, first: 1, last: 2, name: "before the start" },
    { type: PartitionType.ESP, uuid: A, first: 3072, last: 4095, name: "ESP" },
  ]);
  disk[512 + 30] ^= 0xff;
  damaged.addDisk("vda", disk);
  const esps = findEsps(damaged, new Log(damaged), typeSelector(), newEspSearch(), Infinity);
  t.like(esps?.[0], { device: "", disk: "/dev/vda", offset: 3072 * 512, size: 1024 * 512 });
  const lines = logLines(damaged);
  t.regex(
    lines[0],
    /^storage-init: \/dev\/vda: primary GPT is damaged \(header CRC32 mismatch at LBA 1 \(stored [0-9a-f]+, computed [0-9a-f]+\)\); using the backup$/,
  );
  t.is(
    lines[1],
    `storage-init: /dev/vda: GPT entries ignored: partition 1 (type ${B}) spans LBA 2048..99999, outside the usable 34..8158; partition 2 (type ${B}) spans LBA 1..2, outside the usable 34..8158`,
  );
  t.is(lines.length, 2);
});

test("findEsps() says at debug level why a disk is not read and which ESP has no node yet; a device path is found as it is", (t) => {
  const k = new FakeKernel();
  k.addDisk(
    "vda",
    writeGpt(4 * 1048576, 512, [{ type: PartitionType.ESP, uuid: A, first: 2048, last: 4095, name: "ESP" }]),
  );
  k.addFile("/sys/class/block/vda/queue/logical_block_size", "512\n");
  k.addDisk("vdb", new Uint8Array(1048576));
  const log = new Log(k);
  log.setDebug(true);
  t.is(findEsps(k, log, typeSelector(), newEspSearch(), Infinity), undefined);
  t.deepEqual(logLines(k), [
    "storage-init: /dev/vda: partition 1 matches but has no device node yet",
    'storage-init: /dev/vdb: no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)',
  ]);
  t.deepEqual(findEsps(k, log, parseEspSelector("/dev/vdb"), newEspSearch(), Infinity), [
    { device: "/dev/vdb", disk: "", offset: 0, size: 0, partUuid: "", how: "storage_init.esp=/dev/vdb" },
  ]);
});

test("findEsps() still reads a disk at the deadline, and none after it", (t) => {
  const k = new FakeKernel();
  k.addDisk("vda", new Uint8Array(1048576));
  const state = newEspSearch();
  findEsps(k, new Log(k), typeSelector(), state, k.now);
  t.is(state.gpts.size, 1);
});

test("findEsps() takes the GPT's range when the kernel's partition starts there but is of another size", (t) => {
  const k = new FakeKernel();
  k.addDisk(
    "vda",
    writeGpt(4 * 1048576, 512, [{ type: PartitionType.ESP, uuid: A, first: 2048, last: 4095, name: "ESP" }]),
    [[1, 1048576, 524288]],
  );
  t.like(findEsps(k, new Log(k), typeSelector(), newEspSearch(), Infinity)?.[0], { device: "", offset: 1048576 });
  t.deepEqual(logLines(k), [
    "storage-init: /dev/vda1 is not the GPT's partition 1 (bytes 1048576+524288): using the GPT's range",
  ]);
});

test("selects() does not take a label for a PARTUUID, nor a PARTUUID for a label", (t) => {
  const p = {
    number: 1,
    typeGuid: PartitionType.ESP,
    partGuid: A,
    name: "efi",
    offset: 0,
    size: 512,
    attrsHigh: 0,
    firstLba: 34,
    lastLba: 34,
  };
  t.false(selects(parseEspSelector("PARTLABEL=" + A), p));
  t.false(selects({ kind: "partuuid", value: "efi", source: "x" }, p));
});

test("espTimeout(): a line that fits 200 characters keeps it all; details name what was loaded, or none", (t) => {
  const room = 200 - 40 - UNTIL.length;
  t.is(espTimeout(WAITED, ["x".repeat(room)], SEEN).message, "x".repeat(room) + UNTIL);
  const short = "; waited 30 s for the ESP";
  const fits = 200 - 40 - short.length;
  t.is(espTimeout(WAITED, ["x".repeat(room + 1)], SEEN).message, "x".repeat(room + 1) + short);
  t.is(espTimeout(WAITED, ["x".repeat(fits)], SEEN).message, "x".repeat(fits) + short, "not cut at exactly its room");
  t.is(espTimeout(WAITED, ["x".repeat(fits + 1)], SEEN).message.length, fits + short.length, "cut one past it");
  const none = espTimeout(WAITED, [], { ...SEEN, loaded: [], leftOut: 0, failures: ["a: EIO", "b: EIO"] });
  t.deepEqual(none.details, [
    "module failed: a: EIO",
    "module failed: b: EIO",
    "modules loaded: none",
    "block devices: none",
    "20 modaliases seen",
  ]);
  t.is(none.message, "a: EIO (and 1 more modules failed)" + UNTIL);
  t.is(espTimeout(WAITED, [], { ...SEEN, blockDevices: ["vda"] }).message, "no partition of vda is it" + UNTIL);
});

const SKIPPED = `partition 1 (type ${B}) spans LBA 1..2, outside the usable 34..8158; partition 2 (type ${B}) spans LBA 2..99999, outside the usable 34..8158`;

/** A coldplug that has loaded all it will: one look, then the report. */
function coldplugDone(): Coldplug {
  return {
    waitFor: <T>(find: (deadline: number) => T | undefined) => find(Infinity),
    report: () => SEEN,
  } as unknown as Coldplug;
}

test("waitForEsp() names the disks it refused, not the sound ones, and the selector once", (t) => {
  const k = twoDisks();
  k.addDisk("vdz", new Uint8Array(1048576));
  k.addDisk(
    "vdy",
    writeGpt(4 * 1048576, 512, [
      { type: B, uuid: B, first: 1, last: 2, name: "a" },
      { type: B, uuid: B, first: 2, last: 99999, name: "b" },
    ]),
  );
  const log = new Log(k);
  t.throws(() => waitForEsp(k, log, coldplugDone(), parseEspSelector("PARTUUID=" + B.toUpperCase()), 30000), {
    any: true,
    instanceOf: InitError,
    message: /^\/dev\/vdy: partition 1 .*\.\.\..* \(and 1 more disks\); waited 30 s for the ESP$/,
  });
  t.deepEqual(
    logLines(k).filter((l) => l.includes("/dev/") && !l.includes("GPT entries ignored")),
    [
      "storage-init: /dev/nvme0n1: partition 1 has the ESP's PARTUUID but not its type: not taken",
      `storage-init: /dev/vdy: ${SKIPPED}`,
      'storage-init: /dev/vdz: no GPT: no "EFI PART" signature at LBA 1 or at the last LBA (512- or 4096-byte sectors)',
    ],
  );
  const sound = new FakeKernel();
  sound.mkdirp("/sys/class/block");
  for (const [sel, what] of [
    [parseEspSelector("PARTUUID=" + B.toUpperCase()), "storage_init.esp=PARTUUID=" + B.toUpperCase()],
    [{ kind: "partuuid" as const, value: B, source: "LoaderDevicePartUUID" }, "LoaderDevicePartUUID " + B],
    [typeSelector(), "the ESP partition type"],
  ] as const)
    t.throws(() => waitForEsp(sound, new Log(sound), coldplugDone(), sel, 30000), {
      any: true,
      message: `no disk appeared; waited 30 s for the ESP (${what})`,
    });
});

test("mountEsp() mounts the partition read-only, or a read-only loop device over the ESP's range, which the mount then holds", (t) => {
  const k = new FakeKernel();
  k.addFile("/dev/loop-control", "");
  const loader = efiLoader(k);
  k.addDisk("vda", new Uint8Array(4 * 1048576), [[1, 1048576, 1048576]]);
  const log = new Log(k);
  const esp = { device: "/dev/vda1", disk: "/dev/vda", offset: 1048576, size: 1048576, partUuid: A, how: "x" };
  t.is(mountEsp(k, log, loader, esp, "/esp"), "/dev/vda1");
  const range = { ...esp, device: "" };
  t.is(espName(range), "/dev/vda bytes 1048576+1048576");
  t.is(espName(esp), "/dev/vda1");
  t.is(mountEsp(k, log, loader, range, "/esp2"), "/dev/loop0");
  t.deepEqual(
    k.mountLog.map((m) => [m.source, m.target, m.fstype, m.flags, m.data]),
    [
      ["/dev/vda1", "/esp", "vfat", 1 | 2 | 4 | 8, ""],
      ["/dev/loop0", "/esp2", "vfat", 1 | 2 | 4 | 8, ""],
    ],
  );
  t.deepEqual(k.modulesLoaded, ["fat", "vfat", "loop"]);
  t.deepEqual(
    logLines(k).filter((l) => l.includes("ESP")),
    [
      "storage-init: ESP /dev/vda1 (found by x)",
      "storage-init: ESP at /dev/vda bytes 1048576+1048576 (found by x; the kernel made no partition node) on /dev/loop0",
    ],
  );
  t.deepEqual(k.openPaths(), [], "the loop device's fd is closed once mounted");
});
