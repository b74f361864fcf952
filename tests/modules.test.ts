import test from "ava";
import { InitError } from "../lib/errors.js";
import { Log } from "../runtime/log.js";
import { parseModuleTable } from "../runtime/module_table.js";
import { ModuleLoader } from "../runtime/modules.js";
import { Errno, isErrno } from "../syscalls/errno.js";
import { FakeKernel } from "./fake_kernel.js";
import { TABLE } from "./fake_world.js";

function loader(
  files = ["virtio", "virtio_pci", "virtio_blk", "fat", "vfat", "loop", "dm-mod", "dm-verity", "erofs"],
): { k: FakeKernel; l: ModuleLoader } {
  const k = new FakeKernel();
  k.addFile("/modules/table", TABLE);
  for (const f of files) k.addFile("/modules/" + f + ".ko", "\x7fELF");
  return { k, l: ModuleLoader.open(k, new Log(k), []) };
}

test("ModuleLoader.load() loads dependencies first, each module once", (t) => {
  const { k, l } = loader();
  t.is(l.load("virtio_blk", "virtio:d00000002v00001AF4"), 2);
  t.is(l.load("virtio_pci", "pci:v00001AF4d00001001"), 1);
  t.is(l.load("virtio_blk", "again"), 0);
  t.deepEqual(k.modulesLoaded, ["virtio", "virtio_blk", "virtio_pci"]);
  t.deepEqual(l.loadedNames(), ["virtio", "virtio_blk", "virtio_pci"]);
  t.regex(k.logText(), /storage-init: loaded virtio_blk \(\d+\.\d ms\)/);
});

test("ModuleLoader.load() takes a module the kernel already has (EEXIST) as loaded", (t) => {
  const { k, l } = loader();
  k.modulesLoaded.push("virtio");
  t.is(l.load("virtio_blk", "x"), 1);
  t.deepEqual(l.loadedNames(), ["virtio_blk"], "only what this loader loaded is in its history");
});

test("ModuleLoader.load() names the module, why it was loaded and the errno", (t) => {
  const { k, l } = loader();
  k.failModules.set("virtio_blk", 8);
  const e = t.throws(() => l.load("virtio_blk", "virtio:d00000002v00001AF4"), {
    any: true,
    instanceOf: InitError,
  }) as InitError;
  t.is(
    e.message,
    'load module virtio_blk (for virtio:d00000002v00001AF4): finit_module "/modules/virtio_blk.ko": ENOEXEC',
  );
  t.is(e.errno, 8);
});

test("ModuleLoader.load() names a module file missing from the initramfs", (t) => {
  const { l } = loader(["virtio"]);
  const e = t.throws(() => l.load("virtio_blk", "virtio:x"), { any: true, instanceOf: InitError }) as InitError;
  t.is(e.message, 'load module virtio_blk (for virtio:x): "/modules/virtio_blk.ko" is missing from the initramfs');
  t.true(isErrno(e, Errno.ENOENT));
});

test("ModuleLoader.loadGroup() loads a phase's modules and modulesFor() matches modaliases", (t) => {
  const { k, l } = loader();
  t.is(l.loadGroup("verity"), 2);
  t.deepEqual(k.modulesLoaded, ["dm_mod", "dm_verity"]);
  t.is(l.loadGroup("efi"), 0, "a group this kernel's table does not have loads nothing");
  t.deepEqual(l.modulesFor("virtio:d00000002v00001AF4"), ["virtio_blk"]);
  t.deepEqual(l.modulesFor("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"), []);
  t.is(parseModuleTable(TABLE).groups.get("vfat")?.join(","), "vfat");
});

test("ModuleLoader.open() refuses a table built for another kernel release, naming both", (t) => {
  const k = new FakeKernel();
  k.addFile("/modules/table", TABLE);
  k.addFile("/proc/sys/kernel/osrelease", "6.1.0-99-amd64\n");
  t.throws(() => ModuleLoader.open(k, new Log(k), []), {
    any: true,
    instanceOf: InitError,
    message: `the initramfs's modules are for kernel "6.1.0-test", but the running kernel is "6.1.0-99-amd64"`,
  });
});
