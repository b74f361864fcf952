import test from "ava";
import { InitError } from "../lib/errors.js";
import { selectDdiPartitions } from "../runtime/ddi.js";
import { readDdi } from "../runtime/ddi.js";
import { Log } from "../runtime/log.js";
import { ModuleLoader } from "../runtime/modules.js";
import { mountRoot, setUpRootDevice } from "../runtime/root_device.js";
import { Errno, KernelError } from "../syscalls/errno.js";
import { FakeKernel } from "./fake_kernel.js";
import { syntheticDdi, TABLE } from "./fake_world.js";
import { putU64le } from "../lib/bytes.js";

const HASH = "0123456789abcdef".repeat(4);
const STRICT = { options: [], allowWeakHash: false, signatureRequired: false, certificates: [] };

function machine(): { k: FakeKernel; log: Log; loader: ModuleLoader } {
  const k = new FakeKernel();
  k.addFile("/modules/table", TABLE);
  for (const f of ["loop", "dm-mod", "dm-verity", "erofs"]) k.addFile("/modules/" + f + ".ko", "\x7fELF");
  k.addFile("/dev/loop-control", "");
  k.addFile("/dev/mapper/control", "");
  k.addFile("/esp/root.raw", syntheticDdi(HASH));
  const log = new Log(k);
  return { k, log, loader: ModuleLoader.open(k, log, []) };
}

test("setUpRootDevice() puts dm-verity over the DDI's two partitions, each on a read-only loop device", (t) => {
  const { k, log, loader } = machine();
  const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
  const root = setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, {
    options: ["panic_on_corruption"],
    allowWeakHash: false,
    signatureRequired: false,
    certificates: [],
  });
  t.like(root, { path: "/dev/dm-0", verified: true });
  t.is(root.held.length, 2, "both loop fds are held until the mount");
  t.deepEqual(k.dmTables, [`1 7:0 7:1 4096 4096 16 1 sha256 ${HASH} deadbeef 1 panic_on_corruption`]);
  t.deepEqual(k.modulesLoaded, ["loop", "dm_mod", "dm_verity"]);
  mountRoot(k, loader, root, "/sysroot", "erofs", "");
  t.true(
    k.mountLog.some(
      (m) => m.source === "/dev/dm-0" && m.target === "/sysroot" && m.fstype === "erofs" && m.flags === 1,
    ),
  );
  for (const fd of root.held)
    t.throws(() => k.close(fd), { any: true, message: /EBADF/ }, "the loop fds are closed once mounted");
});

test("setUpRootDevice() with systemd.verity=0 mounts the root partition's loop device, unverified, saying so", (t) => {
  const { k, log, loader } = machine();
  const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", undefined, true);
  t.like(setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT), { path: "/dev/loop0", verified: false });
  t.deepEqual(k.dmTables, []);
  t.regex(k.logText(), /systemd\.verity=0: mounting the root WITHOUT verification/);
});

test("setUpRootDevice() refuses a roothash= of another length than the superblock's algorithm, before any device-mapper work", (t) => {
  const { k, log, loader } = machine();
  const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
  if (ddi.verity) ddi.verity.rootHash = HASH.slice(0, 40);
  t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT), {
    any: true,
    message: "roothash= has 40 hex digits, but sha256 needs 64",
  });
  t.deepEqual(k.dmTables, []);
});

test("mountRoot() explains an EIO that dm-verity caused as tampering, and passes other errors on", (t) => {
  const { k, log, loader } = machine();
  const root = setUpRootDevice(
    k,
    log,
    loader,
    "/esp/root.raw",
    selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false),
    STRICT,
  );
  k.mount = (source, target) => {
    throw new KernelError("mount", `"${source}" on "${target}" (erofs)`, Errno.EIO);
  };
  t.throws(
    () => mountRoot(k, loader, root, "/sysroot", "erofs", ""),
    { any: true, message: 'mount "/dev/dm-0" on "/sysroot" (erofs): EIO' },
    "verified blocks: an EIO of another cause",
  );
  k.verityStatus = "C";
  const e = t.throws(() => mountRoot(k, loader, root, "/sysroot", "erofs", ""), {
    any: true,
    instanceOf: InitError,
  }) as InitError;
  t.is(
    e.message,
    'mount "/dev/dm-0" on "/sysroot" (erofs): EIO: dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)',
  );
  t.is(e.errno, Errno.EIO);
  t.throws(
    () =>
      mountRoot(
        k,
        loader,
        { path: "/dev/loop0", verified: false, rootHash: "", signed: false, signer: "", held: [] },
        "/sysroot",
        "erofs",
        "",
      ),
    { any: true, message: 'mount "/dev/loop0" on "/sysroot" (erofs): EIO' },
    "an unverified device is not explained",
  );
});

test("setUpRootDevice() refuses a verity superblock that verifies less than the erofs file system holds", (t) => {
  const { k, log, loader } = machine();
  const ddi = syntheticDdi(HASH);
  putU64le(ddi, 2 * 1048576 + 72, 12); // the verity superblock's data block count, lowered from 16
  k.addFile("/esp/root.raw", ddi);
  const layout = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
  t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", layout, STRICT), {
    any: true,
    message: "the erofs file system has 65536 bytes, but dm-verity verifies only 49152 of them",
  });
});

test("setUpRootDevice() explains an EIO reading the erofs superblock through dm-verity as tampering", (t) => {
  const { k, log, loader } = machine();
  const pread = k.pread.bind(k);
  k.pread = (fd, buf, offset) => {
    if ((k as unknown as { fds: Map<number, { path: string }> }).fds.get(fd)?.path === "/dev/dm-0") {
      k.verityStatus = "C";
      throw new KernelError("pread", "fd " + fd + " at " + offset, Errno.EIO);
    }
    return pread(fd, buf, offset);
  };
  const layout = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
  const e = t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", layout, STRICT), {
    any: true,
    instanceOf: InitError,
  }) as InitError;
  t.regex(
    e.message,
    /^read the erofs superblock of \/dev\/dm-0: pread fd \d+ at 1024: EIO: dm-verity found blocks that do not match roothash= \(the image is corrupted or was tampered with\)$/,
  );
  t.is(e.errno, Errno.EIO);
});
