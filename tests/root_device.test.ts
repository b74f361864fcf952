import test from "ava";
import { encodeBase64 } from "../lib/base64.js";
import { InitError } from "../lib/errors.js";
import { readDdi, readDdiLayout, selectDdiPartitions } from "../runtime/ddi.js";
import { DmIoctl } from "../runtime/devmapper.js";
import { LoopIoctl } from "../runtime/loop.js";
import { Log } from "../runtime/log.js";
import { ModuleLoader } from "../runtime/modules.js";
import { execInit, hashModuleGroup, mountRoot, releaseRoot, setUpRootDevice } from "../runtime/root_device.js";
import type { RootDevice } from "../runtime/root_device.js";
import { VerityField } from "../runtime/verity.js";
import { Errno, KernelError } from "../syscalls/errno.js";
import { FakeKernel } from "./fake_kernel.js";
import { fakeFingerprint, logLines, signatureJson, syntheticDdi, TABLE } from "./fake_world.js";
import { putU64le } from "../lib/bytes.js";

const HASH = "0123456789abcdef".repeat(4);

/** What the module said: its log lines without those of the module loader. */
const said = (k: FakeKernel) => logLines(k).filter((l) => !/^storage-init: loaded \S+ (for \S+ )?\(/.test(l));
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

test("hashModuleGroup() names the module group of each hash digestBytes() takes", (t) => {
  t.is(hashModuleGroup("sha256"), "hash-sha256");
  t.is(hashModuleGroup("sha512"), "hash-sha512");
  t.is(hashModuleGroup("sha1"), "hash-sha1");
});

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
  t.deepEqual(k.dmEvents, ["create root STORAGE_INIT-VERITY-root", "load root 0 128 verity"], "16 blocks of 4 KiB");
  t.deepEqual(k.modulesLoaded, ["loop", "dm_mod", "dm_verity"]);
  t.like(root, { rootHash: HASH, signed: false, signer: "" });
  t.deepEqual(said(k), ["storage-init: dm-verity /dev/dm-0 (sha256, 16 blocks of 4096) over /dev/loop0 + /dev/loop1"]);
  const held = root.held.slice();
  mountRoot(k, loader, root, "/sysroot", "erofs", "");
  t.true(
    k.mountLog.some(
      (m) => m.source === "/dev/dm-0" && m.target === "/sysroot" && m.fstype === "erofs" && m.flags === 1,
    ),
  );
  t.deepEqual(root.held, []);
  for (const fd of held)
    t.throws(() => k.close(fd), { any: true, message: /EBADF/ }, "the loop fds are closed once mounted");
});

test("setUpRootDevice() with systemd.verity=0 mounts the root partition's loop device, unverified, saying so", (t) => {
  const { k, log, loader } = machine();
  log.setDebug(true);
  const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", undefined, true);
  const root = setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT);
  const fd = root.held[0];
  t.deepEqual(root, { path: "/dev/loop0", verified: false, rootHash: "", signed: false, signer: "", held: [fd] });
  t.deepEqual(k.dmEvents, []);
  t.deepEqual(said(k), [
    "storage-init: root partition " + ddi.root.partGuid + " on /dev/loop0",
    "storage-init: systemd.verity=0: mounting the root WITHOUT verification",
  ]);
  mountRoot(k, loader, root, "/sysroot", "erofs", "");
  t.deepEqual(root.held, []);
  t.throws(() => k.close(fd), { any: true, message: /EBADF/ }, "the loop fd is closed once mounted");
});

test("setUpRootDevice() names the partition whose loop device it cannot attach, and keeps no loop device", (t) => {
  for (const [failing, what] of [
    [1, "root"],
    [2, "root-verity"],
  ] as const) {
    const { k, log, loader } = machine();
    const ioctl = k.ioctl.bind(k);
    let configured = 0;
    k.ioctl = (fd, request, buf) => {
      if (request === LoopIoctl.CONFIGURE && ++configured === failing)
        throw new KernelError("ioctl", "LOOP_CONFIGURE", Errno.EINVAL);
      return ioctl(fd, request, buf);
    };
    const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
    const guid = failing === 1 ? ddi.root.partGuid : ddi.verity?.partition.partGuid;
    t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT), {
      any: true,
      message: new RegExp(`^attach the ${what} partition ${guid}: .*EINVAL$`),
    });
    t.deepEqual(k.openPaths(), [], "no loop device or file left open");
  }
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
  putU64le(ddi, 2 * 1048576 + VerityField.DATA_BLOCKS, 12); // lowered from 16
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

const FP = fakeFingerprint("fake");
const PINNED = { policy: "verity" as const, rootHash: HASH, verityDisabled: false };

/** A machine whose DDI carries `signature` (JSON), its layout read as a boot pinned by roothash= reads it. */
function signedMachine(signature: string = signatureJson(HASH, "signed")) {
  const m = machine();
  m.k.addFile("/esp/root.raw", syntheticDdi(HASH, signature));
  return { ...m, ddi: readDdiLayout(m.k, "/esp/root.raw", "x86-64", PINNED) };
}

/** Makes the kernel's first `request` on the device mapper fail with `errno`. */
function failOnce(k: FakeKernel, request: number, errno: number): void {
  const ioctl = k.ioctl.bind(k);
  let failed = false;
  k.ioctl = (fd, r, buf) => {
    if (r === request && !failed) {
      failed = true;
      throw new KernelError("ioctl", "0x" + r.toString(16), errno);
    }
    return ioctl(fd, r, buf);
  };
}

test("setUpRootDevice() with a signature the kernel accepts says so and names its signer", (t) => {
  const { k, log, loader, ddi } = signedMachine();
  const root = setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT);
  t.like(root, { path: "/dev/dm-0", verified: true, rootHash: HASH, signed: true, signer: FP });
  t.deepEqual(said(k), [
    `storage-init: dm-verity /dev/dm-0 (sha256, 16 blocks of 4096) over /dev/loop0 + /dev/loop1; the kernel accepted the signature of root hash ${HASH} (certificate SHA-256 ${FP})`,
  ]);
});

for (const [errno, meaning] of [
  [Errno.EINVAL, "EINVAL, its signature value does not decode, as when it was corrupted"],
  [Errno.EBADMSG, "EBADMSG, it is not a well-formed PKCS#7 message"],
  [Errno.ENOPKG, "ENOPKG, it uses an algorithm this kernel lacks"],
  [Errno.EKEYEXPIRED, "EKEYEXPIRED, the key that made it has expired"],
  [Errno.EEXIST, "EEXIST, the kernel refused it"],
] as const) {
  test(`setUpRootDevice() names what the kernel's ${meaning.split(",")[0]} on a signature means, and with a signature required activates nothing`, (t) => {
    const { k, log, loader, ddi } = signedMachine();
    k.signatureVerdict = () => errno;
    const e = t.throws(
      () => setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, { ...STRICT, signatureRequired: true }),
      { any: true, instanceOf: InitError },
    ) as InitError;
    t.is(e.message, `the kernel refused the signature of root hash ${HASH} (certificate SHA-256 ${FP}): ${meaning}`);
    t.is(e.errno, errno);
    t.deepEqual(k.dmEvents, ["create root STORAGE_INIT-VERITY-root", "remove root"]);
    t.is(k.keys.size, 0);
    t.deepEqual(k.openPaths(), []);
  });
}

test("setUpRootDevice() does not call a busy device-mapper name a refused signature, and does not go on without it", (t) => {
  const { k, log, loader, ddi } = signedMachine();
  failOnce(k, DmIoctl.DEV_CREATE, Errno.EBUSY);
  t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT), {
    any: true,
    message: /EBUSY$/,
  });
  t.deepEqual(k.dmEvents, [], "no table loaded, with or without the signature");
  t.deepEqual(said(k), []);
  t.is(k.keys.size, 0);
});

test("setUpRootDevice() does not call a verity status other than V a refused signature", (t) => {
  const { k, log, loader, ddi } = signedMachine();
  k.verityStatus = "C";
  t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT), {
    any: true,
    message: 'dm-verity device root reports status "C" instead of V (verified)',
  });
  t.deepEqual(k.dmEvents, ["create root STORAGE_INIT-VERITY-root", "load root 0 128 verity", "remove root"]);
  t.deepEqual(said(k), []);
});

test("setUpRootDevice() without a signature reports a device-mapper failure as it is", (t) => {
  const { k, log, loader } = machine();
  failOnce(k, DmIoctl.DEV_CREATE, Errno.EBUSY);
  const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
  t.throws(() => setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT), {
    any: true,
    message: /^device-mapper create[^:]*: .*EBUSY$/,
  });
  t.deepEqual(k.openPaths(), []);
});

test("setUpRootDevice() names the fingerprint a signature claims when its PKCS#7 does not parse, and roothash= then pins the root", (t) => {
  const garbage = encodeBase64(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]));
  const { k, log, loader, ddi } = signedMachine(
    `{"rootHash":"${HASH}","signature":"${garbage}","certificateFingerprint":"${FP}"}`,
  );
  const root = setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT);
  t.like(root, { verified: true, signed: false, signer: "" });
  const warned = said(k)[0];
  t.true(
    warned.startsWith(`storage-init: the signature of root hash ${HASH} (certificate SHA-256 ${FP}) is not taken: `),
    warned,
  );
  t.true(warned.endsWith("; roothash= pins the root: activating it without the signature"), warned);
});

test("execInit() explains an EIO that dm-verity caused as tampering, and passes other errors on", (t) => {
  const { k, log, loader } = machine();
  setUpRootDevice(
    k,
    log,
    loader,
    "/esp/root.raw",
    selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false),
    STRICT,
  );
  let errno: number = Errno.ENOENT;
  k.execve = (path) => {
    throw new KernelError("execve", `"${path}"`, errno);
  };
  t.throws(() => execInit(k, "/sbin/init", ["/sbin/init"], []), { any: true, message: 'execve "/sbin/init": ENOENT' });
  errno = Errno.EIO;
  t.throws(() => execInit(k, "/sbin/init", ["/sbin/init"], []), { any: true, message: 'execve "/sbin/init": EIO' });
  k.verityStatus = "C";
  t.throws(() => execInit(k, "/sbin/init", ["/sbin/init"], []), {
    any: true,
    instanceOf: InitError,
    message:
      'execve "/sbin/init": EIO: dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)',
  });
});

/** A verified root set up and mounted on /sysroot, and the umount calls made after. */
function mountedRoot(): { k: FakeKernel; log: Log; root: RootDevice; held: number[]; umounts: string[] } {
  const { k, log, loader } = machine();
  const ddi = selectDdiPartitions(readDdi(k, "/esp/root.raw"), "x86-64", HASH, false);
  const root = setUpRootDevice(k, log, loader, "/esp/root.raw", ddi, STRICT);
  const held = root.held.slice();
  const umounts: string[] = [];
  const umount = k.umount.bind(k);
  k.umount = (target, flags) => {
    umounts.push(target);
    umount(target, flags);
  };
  return { k, log, root, held, umounts };
}

test("releaseRoot() unmounts a root that was mounted, removes its dm-verity device and closes its loop devices", (t) => {
  const { k, log, root, held, umounts } = mountedRoot();
  k.mount(root.path, "/sysroot", "erofs", 1, "");
  releaseRoot(k, log, root, "/sysroot");
  t.deepEqual(umounts, ["/sysroot"]);
  t.is(k.dmEvents[k.dmEvents.length - 1], "remove root");
  t.deepEqual(root.held, []);
  for (const fd of held) t.throws(() => k.close(fd), { any: true, message: /EBADF/ });
  t.deepEqual(said(k).slice(1), [], "nothing to warn of");
});

test("releaseRoot() unmounts nothing for a root that was not mounted, and removes no device for an unverified one", (t) => {
  const { k, log, root, umounts } = mountedRoot();
  releaseRoot(k, log, root, "");
  t.deepEqual(umounts, []);
  t.deepEqual(said(k).slice(1), []);
  const asked = k.ioctls.length;
  releaseRoot(k, log, { path: "/dev/loop0", verified: false, rootHash: "", signed: false, signer: "", held: [] }, "");
  t.deepEqual(k.ioctls.slice(asked), [], "the device mapper not asked");
});

test("releaseRoot() warns of a root it cannot unmount, and still releases its devices", (t) => {
  const { k, log, root } = mountedRoot();
  k.umount = () => {
    throw new KernelError("umount", '"/sysroot"', Errno.EBUSY);
  };
  releaseRoot(k, log, root, "/sysroot");
  t.deepEqual(said(k).slice(1), ['storage-init: cannot unmount /sysroot to try another DDI: umount "/sysroot": EBUSY']);
  t.is(k.dmEvents[k.dmEvents.length - 1], "remove root");
  t.deepEqual(root.held, []);
});
