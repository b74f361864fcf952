import test from "ava";
import { Coldplug, couldBeStorage } from "../runtime/coldplug.js";
import { Log } from "../runtime/log.js";
import { ModuleLoader } from "../runtime/modules.js";
import { FakeKernel } from "./fake_kernel.js";
import { TABLE } from "./fake_world.js";
import { Errno, KernelError } from "../syscalls/errno.js";

function machine(): { k: FakeKernel; cold: Coldplug } {
  const k = new FakeKernel();
  k.addFile("/modules/table", TABLE);
  for (const f of ["virtio", "virtio_pci", "virtio_blk"]) k.addFile("/modules/" + f + ".ko", "\x7fELF");
  k.mkdirp("/sys/class/block");
  k.addBusDevice("pci", "0000:00:01.0", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01");
  k.addBusDevice("pci", "0000:00:02.0", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00");
  k.onModuleLoaded = (name) => {
    if (name === "virtio_pci") k.addBusDevice("virtio", "virtio0", "virtio:d00000002v00001AF4");
    if (name === "virtio_blk") k.addFile("/sys/class/block/vda/size", "8\n");
  };
  const log = new Log(k);
  return { k, cold: new Coldplug(k, log, ModuleLoader.open(k, log, [])) };
}

test("Coldplug.round() loads what the new modaliases match, each modalias once", (t) => {
  const { k, cold } = machine();
  t.is(cold.round(), 2, "virtio_pci and its dependency");
  t.is(cold.round(), 1, "virtio_blk, for the device virtio_pci made");
  t.is(cold.round(), 0);
  t.deepEqual(k.modulesLoaded, ["virtio", "virtio_pci", "virtio_blk"]);
  t.is(cold.modaliases, 3);
});

test("Coldplug.waitFor() runs rounds until the probe finds its thing, without waiting while drivers load", (t) => {
  const { k, cold } = machine();
  const found = cold.waitFor(() => (k.nodes.has("/sys/class/block/vda/size") ? "vda" : undefined), 5000);
  t.is(found, "vda");
  t.is(k.ueventSockets + k.polls, 0);
});

test("Coldplug.waitFor() opens the uevent socket once a round loads nothing, then waits until the timeout", (t) => {
  const { k, cold } = machine();
  const start = k.now;
  t.is(
    cold.waitFor(() => undefined, 2000),
    undefined,
  );
  t.is(k.ueventSockets, 1);
  t.true(k.now - start >= 2000 && k.now - start < 2300, `waited ${k.now - start} ms`);
  t.deepEqual(cold.report(), {
    modaliases: 3,
    loaded: ["virtio", "virtio_pci", "virtio_blk"],
    failures: [],
    unmatched: ["pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"],
    leftOut: 0,
    blockDevices: ["vda"],
  });
});

test("Coldplug.waitFor() polls when there is no uevent socket", (t) => {
  const { k, cold } = machine();
  k.ueventSocket = () => {
    throw new Error("no netlink");
  };
  t.is(
    cold.waitFor(() => undefined, 100),
    undefined,
  );
  t.regex(k.logText(), /no uevent socket \(no netlink\); polling for devices/);
});

test("Coldplug.round() reads a device again when its modalias could not be read yet", (t) => {
  const { k, cold } = machine();
  k.mkdirp("/sys/bus/pci/devices/0000:00:05.0");
  cold.round();
  t.is(cold.modaliases, 2);
  k.addFile("/sys/bus/pci/devices/0000:00:05.0/modalias", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00x\n");
  cold.round();
  t.is(cold.modaliases, 4, "the late modalias and the virtio device virtio_pci made");
});

test("Coldplug.waitFor() takes an overflowing uevent socket (ENOBUFS) as a reason to rescan, not a failure", (t) => {
  const { k, cold } = machine();
  let reads = 0;
  k.poll = () => {
    k.now += 50;
    return 1;
  };
  k.read = () => {
    reads++;
    throw new KernelError("read", "fd 9", reads % 2 === 1 ? Errno.ENOBUFS : Errno.EAGAIN);
  };
  let rounds = 0;
  t.is(
    cold.waitFor(() => (++rounds > 6 ? "late disk" : undefined), 5000),
    "late disk",
  );
  t.true(reads >= 3, `${reads} reads`);
});

test("Coldplug.report() lists the unmatched devices a storage driver could serve, and counts the others", (t) => {
  const k = new FakeKernel();
  k.mkdirp("/sys/class/block");
  k.addFile("/modules/table", "storage-init-modules 2 6.1.0-test\n");
  for (let i = 0; i < 3; i++) k.addBusDevice("platform", "dev" + i, "of:Ndev" + i + "T(null)Cvendor,thing" + i);
  k.addBusDevice("platform", "pcspkr", "platform:pcspkr");
  k.addBusDevice("platform", "PNP0103:00", "acpi:PNP0103:");
  k.addBusDevice("pci", "0000:00:01.0", "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00");
  const cold = new Coldplug(k, new Log(k), ModuleLoader.open(k, new Log(k), []));
  cold.round();
  const r = cold.report();
  t.is(r.modaliases, 6);
  t.deepEqual(r.unmatched.slice().sort(), [
    "of:Ndev0T(null)Cvendor,thing0",
    "of:Ndev1T(null)Cvendor,thing1",
    "of:Ndev2T(null)Cvendor,thing2",
  ]);
  t.is(r.leftOut, 3, "the speaker, the HPET and the display");
  t.deepEqual(r.blockDevices, ["none"]);
});

test("couldBeStorage() keeps storage controllers and board devices, and drops what no storage driver serves", (t) => {
  const keep = [
    "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", // AHCI
    "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", // NVMe
    "pci:v00001B36d0000000Dsv00000000sd00000000bc0Csc03i30", // xHCI
    "pci:v00001B36d00000007sv00000000sd00000000bc08sc05i01", // SD host
    "virtio:d00000002v00001AF4",
    "virtio:d00000008v00001AF4",
    "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00",
    "scsi:t-0x00",
    "scsi:t-0x05",
    "mmc:block",
    "of:NmmcT(null)Cfsl,imx8mm-usdhc",
    "acpi:PRP0001:",
    "platform:sdhci-tegra",
  ];
  const drop = [
    "pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00", // host bridge
    "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00", // display
    "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", // network
    "pci:v00001B36d0000000Dsv00000000sd00000000bc0Csc05i00", // SMBus
    "virtio:d00000001v00001AF4",
    "usb:v0627p0001d0000dc00dsc00dp00ic03isc00ip00in00",
    "scsi:t-0x01",
    "sdio:c00v02D0dA9A6",
    "platform:pcspkr",
    "platform:serial8250",
    "platform:efi-framebuffer",
    "acpi:PNP0103:",
    "acpi:PNP0501:PNP0500:",
  ];
  for (const a of keep) t.true(couldBeStorage(a), a);
  for (const a of drop) t.false(couldBeStorage(a), a);
});
