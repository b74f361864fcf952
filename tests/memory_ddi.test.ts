// A DDI carried in memory (the initramfs's /ddi, in the UKI's .initrd or a second initrd):
// booted over FakeKernel's whole boot without an ESP, verified as one on an ESP is, and the
// sources storage_init.sources= names tried in its order.
import test from "ava";
import { MEMORY_DDI_DIR, memoryDdiPath } from "../lib/facts.js";
import { parseCmdline } from "../runtime/cmdline.js";
import { logLines, syntheticDdi, world } from "./fake_world.js";
import type { WorldOptions } from "./fake_world.js";

const HASH = "0123456789abcdef".repeat(4);
const OTHER = "fedcba9876543210".repeat(4);
const DDI = syntheticDdi(HASH);

/** A boot with `memory` in the initramfs (path under /ddi -> bytes). */
function boot(cmdline: string, memory: Array<[string, Uint8Array]>, opts: Partial<WorldOptions> = {}) {
  const { k, run } = world(`${cmdline} storage_init.failure_delay=0`, { ddi: DDI, ...opts });
  for (const [path, data] of memory) k.addFile(MEMORY_DDI_DIR + path, data);
  const stop = run();
  const log = logLines(k);
  const fatal = log.filter((l) => l.startsWith("storage-init: failed to "));
  const record = k.nodes.get("/run/storage-init/root.json")?.data;
  return { k, stop, log, fatal, root: record && JSON.parse(new TextDecoder().decode(record)) };
}

test("memoryDdiPath() is the last component of storage_init.ddi=, a vpick directory's slash kept", (t) => {
  t.is(memoryDdiPath("/EFI/storage-init/root.raw"), "/root.raw");
  t.is(memoryDdiPath("/EFI/os/root.v/"), "/root.v/");
  t.is(memoryDdiPath("/root.raw"), "/root.raw");
});

test("storage_init.sources= takes initrd and esp in an order, each once; the default tries memory first", (t) => {
  t.deepEqual(parseCmdline("").sources, ["initrd", "esp"]);
  t.deepEqual(parseCmdline("storage_init.sources=esp").sources, ["esp"]);
  t.deepEqual(parseCmdline("storage_init.sources=esp,initrd").sources, ["esp", "initrd"]);
  for (const [v, problem] of [
    ["esp,esp", "storage_init.sources= names esp twice"],
    ["initrd,", 'storage_init.sources= takes initrd and esp, comma-separated: ""'],
    ["net", 'storage_init.sources= takes initrd and esp, comma-separated: "net"'],
    ["", "storage_init.sources= needs a value"],
  ]) {
    const c = parseCmdline(`storage_init.sources=${v}`);
    t.deepEqual(c.problems, [problem], v);
    t.deepEqual(c.sources, ["initrd", "esp"], `${v}: the default stays`);
  }
});

test("a DDI in memory boots without a disk: no storage driver loaded, nothing waited for, the source recorded", (t) => {
  const { k, stop, log, root } = boot(`roothash=${HASH}`, [["/root.raw", DDI]], { noDisk: true });
  t.is(stop.reason, "exec", k.logText());
  t.deepEqual(k.modulesLoaded, ["loop", "dm_mod", "dm_verity", "erofs"]);
  t.is(k.ueventSockets + k.polls, 0, "no coldplug: the ESP was never looked for");
  t.false(
    k.mountLog.some((m) => m.fstype === "vfat"),
    "no ESP mounted",
  );
  t.true(log.includes("storage-init: root from /ddi/root.raw in the initramfs"), log.join("\n"));
  t.is(root.source, "initrd");
  t.is(root.path, "/ddi/root.raw");
  t.deepEqual(root.esp, { device: "", partUuid: "" });
  t.deepEqual(root.passedOver, []);
  t.true(k.dmTables[0].includes(` ${HASH} `));
});

test("a DDI in memory that roothash= does not pin is passed over, and the ESP's pinned one boots", (t) => {
  const { k, stop, log, root } = boot(`roothash=${HASH}`, [["/root.raw", syntheticDdi(OTHER)]]);
  t.is(stop.reason, "exec", k.logText());
  t.true(log.some((l) => l.startsWith("storage-init: passed over the initramfs /ddi/root.raw: ")));
  t.true(log.includes("storage-init: root from /EFI/storage-init/root.raw on /dev/vda1 after 1 passed over"));
  t.is(root.source, "esp");
  t.is(root.passedOver.length, 1);
  t.is(root.passedOver[0].label, "the initramfs /ddi/root.raw");
});

test("storage_init.sources=esp leaves the DDI in memory alone; esp,initrd tries the ESP first", (t) => {
  for (const sources of ["esp", "esp,initrd"]) {
    const { k, root } = boot(`roothash=${HASH} storage_init.sources=${sources}`, [["/root.raw", DDI]]);
    t.is(root?.source, "esp", k.logText());
  }
});

test("with the ESP first and none appearing, the DDI in memory boots after the whole wait", (t) => {
  const { k, stop, root } = boot(
    `roothash=${HASH} storage_init.sources=esp,initrd storage_init.timeout=1`,
    [["/root.raw", DDI]],
    { noDisk: true },
  );
  t.is(stop.reason, "exec", k.logText());
  t.is(root.source, "initrd");
  t.is(root.passedOver[0].label, "the ESP");
  t.regex(root.passedOver[0].reason, /waited 1 s for the ESP/);
});

test("no ESP and no DDI in memory: one fatal line naming both", (t) => {
  const { fatal } = boot(`roothash=${HASH} storage_init.timeout=1`, [], { noDisk: true });
  t.deepEqual(fatal, [
    "storage-init: failed to find the ESP: no module for pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01; waited 1 s for the ESP (the ESP partition type); no DDI in memory",
  ]);
});

test("a DDI in memory refused and no ESP: the fatal line says the DDI in memory was passed over", (t) => {
  const { log, fatal } = boot(`roothash=${HASH} storage_init.timeout=1`, [["/root.raw", syntheticDdi(OTHER)]], {
    noDisk: true,
  });
  t.true(log.some((l) => l.startsWith("storage-init: passed over the initramfs /ddi/root.raw: ")));
  t.is(fatal.length, 1);
  t.true(
    fatal[0].endsWith("; waited 1 s for the ESP (the ESP partition type); the DDI in memory passed over"),
    fatal[0],
  );
});

test("storage_init.sources=initrd: the one DDI in memory's failure is the boot's own line; none at all is named", (t) => {
  const refused = boot(`roothash=${HASH} storage_init.sources=initrd`, [["/root.raw", syntheticDdi(OTHER)]]);
  t.is(refused.fatal.length, 1);
  t.true(
    refused.fatal[0].startsWith("storage-init: failed to open the DDI /ddi/root.raw in the initramfs: "),
    refused.fatal[0],
  );
  t.is(refused.k.ueventSockets + refused.k.polls, 0, "no ESP was looked for");
  const none = boot(`roothash=${HASH} storage_init.sources=initrd`, []);
  t.deepEqual(none.fatal, ["storage-init: failed to open the DDI /ddi: no DDI in the initramfs (/ddi)"]);
});

test("a vpick directory of storage_init.ddi= is one in memory too: its pinned version in /ddi/root.v/", (t) => {
  const { k, stop, root } = boot(
    `roothash=${HASH} storage_init.ddi=/EFI/os/root.v/`,
    [
      ["/root.v/root_1.raw", syntheticDdi(OTHER)],
      ["/root.v/root_2.raw", DDI],
    ],
    { noDisk: true },
  );
  t.is(stop.reason, "exec", k.logText());
  t.is(root.path, "/ddi/root.v/root_2.raw");
});

test("a second stage works the same from memory: its erofs under a tmpfs overlay, root.json saying both", (t) => {
  const { k, stop, log, root } = boot(`roothash=${HASH}`, [["/root.raw", DDI]], {
    noDisk: true,
    onRootMount: (fk, target) => {
      fk.addFile(target + "/etc/initrd-release", "ID=debian\n");
      fk.addFile(target + "/etc/machine-id", "");
    },
  });
  t.is(stop.reason, "exec", k.logText());
  t.true(
    log.includes(
      "storage-init: second stage: /ddi/root.raw under a tmpfs overlay on /sysroot, 0 files of /.extra handed over",
    ),
    log.join("\n"),
  );
  t.true(k.mountLog.some((m) => m.fstype === "overlay" && m.target === "/sysroot"));
  t.is(root.source, "initrd");
  t.is(root.secondStage, true);
});

test("with the ESP first, its DDI refused: the ESP is unmounted and named, and the DDI in memory boots", (t) => {
  const { k, stop, log, root } = boot(`roothash=${HASH} storage_init.sources=esp,initrd`, [["/root.raw", DDI]], {
    espFiles: new Map([["/EFI/storage-init/root.raw", syntheticDdi(OTHER)]]),
  });
  t.is(stop.reason, "exec", k.logText());
  t.is(root.source, "initrd");
  t.true(
    log.some((l) => l.startsWith("storage-init: passed over /dev/vda1: ")),
    log.join("\n"),
  );
  t.is(root.passedOver.length, 1);
  t.is(root.passedOver[0].label, "/dev/vda1");
  t.true(k.umountLog.includes("/run/storage-init/esp"), "the ESP it passed over is not left mounted");
});

test("with the ESP first and no DDI in memory, the fatal line is short and names both", (t) => {
  const { fatal } = boot(`roothash=${HASH} storage_init.sources=esp,initrd storage_init.timeout=1`, [], {
    noDisk: true,
  });
  t.deepEqual(fatal, [
    "storage-init: failed to open the DDI /ddi: no DDI in the initramfs (/ddi); and the ESP gave no root",
  ]);
});
