import test from "ava";
import { Log } from "../runtime/log.js";
import {
  deleteTree,
  FsMagic,
  handOverExtra,
  initArgv,
  switchRoot,
  systemdState,
  systemdStateFd,
} from "../runtime/switch_root.js";
import { FakeKernel } from "./fake_kernel.js";
import { Errno, KernelError } from "../syscalls/errno.js";
import { logLines } from "./fake_world.js";

test("initArgv() tells systemd it was switched into and where its state is, and passes the kernel's extra words", (t) => {
  t.deepEqual(initArgv("/usr/lib/systemd/systemd", ["single"], 3), [
    "/usr/lib/systemd/systemd",
    "--switched-root",
    "--system",
    "--deserialize=3",
    "single",
  ]);
  t.deepEqual(initArgv("/lib/systemd/systemd", [], -1), ["/lib/systemd/systemd", "--switched-root", "--system"]);
  t.deepEqual(initArgv("/sbin/init", ["single"], 3), ["/sbin/init", "single"]);
  t.deepEqual(
    initArgv("/usr/lib/systemd/systemd", [], 0),
    ["/usr/lib/systemd/systemd", "--switched-root", "--system", "--deserialize=0"],
    "0 is a descriptor like any other",
  );
});

test("systemdState() writes the initrd's start as systemd serializes it: realtime and monotonic microseconds", (t) => {
  t.is(systemdState(1790000000123.456, 712.5), "initrd-timestamp=1790000000123456 712500\n");
  t.is(systemdState(1000, 0.001), "initrd-timestamp=1000000 1\n");
  t.is(systemdState(5000.000002, 1000.0405), "initrd-timestamp=5000000 1000040\n");
});

test("systemdStateFd() hands systemd a memfd with the initrd's start; without one, it says so and goes on", (t) => {
  const k = new FakeKernel();
  k.now = 2500;
  const fd = systemdStateFd(k, new Log(k), 400);
  t.deepEqual(k.memfds, [
    { name: "storage-init-state", text: `initrd-timestamp=${(k.epochMs + 400) * 1000} 400000\n`, fd },
  ]);
  k.memfd = () => {
    throw new KernelError("memfd_create", '"storage-init-state"', 24);
  };
  t.is(systemdStateFd(k, new Log(k), 400), -1);
  t.deepEqual(logLines(k), [
    'storage-init: systemd gets no initrd timestamp: memfd_create "storage-init-state": EMFILE',
  ]);
});

test("deleteTree() empties the initramfs without crossing into mounted file systems", (t) => {
  const k = new FakeKernel();
  k.addFile("/modules/a.ko", "x");
  k.addFile("/etc/deep/er/file", "x");
  k.mount("tmpfs", "/run", "tmpfs", 0, "");
  k.addFile("/run/keep", "x");
  k.mount("erofs", "/sysroot", "erofs", 0, "");
  k.addFile("/sysroot/sbin/init", "x");
  const root = k.stat("/");
  const freed = { removed: 0, failed: 0, firstError: "", extra: false };
  deleteTree(k, "/", root.devMajor, root.devMinor, "/sysroot", freed);
  t.is(freed.failed, 0);
  t.deepEqual([...k.nodes.keys()].sort(), [
    "/",
    "/run",
    "/run/keep",
    "/sysroot",
    "/sysroot/sbin",
    "/sysroot/sbin/init",
  ]);
});

test("deleteTree() keeps what it is told to keep, and a block device's file system whatever its minor number", (t) => {
  const k = new FakeKernel();
  k.addFile("/newroot/sbin/init", "x");
  k.addFile("/gone", "x");
  // vda1 is 8:1; the initramfs is 0:1: the same minor number, another device.
  k.addDisk("vda", new Uint8Array(1048576), [[1, 512, 512]]);
  k.mkdirp("/mnt");
  k.mount("/dev/vda1", "/mnt", "vfat", 0, "");
  k.addFile("/mnt/EFI/keep", "x");
  const root = k.stat("/");
  t.deepEqual([root.devMajor, root.devMinor, k.stat("/mnt").devMajor, k.stat("/mnt").devMinor], [0, 1, 8, 1]);
  const freed = { removed: 0, failed: 0, firstError: "", extra: false };
  deleteTree(k, "/", root.devMajor, root.devMinor, "/newroot", freed);
  t.true(k.nodes.has("/newroot/sbin/init"));
  t.true(k.nodes.has("/mnt/EFI/keep"));
  t.false(k.nodes.has("/gone"));
});

test("deleteTree() counts a directory it cannot read, and the directory it then cannot remove", (t) => {
  const k = new FakeKernel();
  k.addFile("/a/one", "x");
  const readdir = k.readdir.bind(k);
  k.readdir = (path, max) => {
    if (path === "/a") throw new KernelError("open", '"/a"', Errno.EIO);
    return readdir(path, max);
  };
  const root = k.stat("/");
  const freed = { removed: 0, failed: 0, firstError: "", extra: false };
  deleteTree(k, "/", root.devMajor, root.devMinor, "/sysroot", freed);
  t.like(freed, { failed: 2, firstError: 'open "/a": EIO' });
  t.true(k.nodes.has("/a/one"));
});

test("deleteTree() goes on past what it cannot remove, counting it", (t) => {
  const k = new FakeKernel();
  k.addFile("/a/one", "x");
  k.addFile("/b/two", "x");
  k.unlink = (path) => {
    if (path === "/a/one") throw new KernelError("unlink", '"/a/one"', Errno.EBUSY);
    k.nodes.delete(path);
  };
  const root = k.stat("/");
  const freed = { removed: 0, failed: 0, firstError: "", extra: false };
  deleteTree(k, "/", root.devMajor, root.devMinor, "/sysroot", freed);
  t.false(k.nodes.has("/b/two"));
  t.true(k.nodes.has("/a/one"));
  t.is(freed.failed, 2, "the file and the directory it keeps");
  t.is(freed.firstError, 'unlink "/a/one": EBUSY');
});

function switched(
  fsType: number,
  pid = 1,
  extra = false,
  prepare: (k: FakeKernel, log: Log) => void = () => undefined,
): { k: FakeKernel; lines: string[] } {
  const k = new FakeKernel();
  const log = new Log(k);
  prepare(k, log);
  if (extra) k.addFile("/.extra/credentials/a.cred", "x");
  for (const m of ["/dev", "/proc", "/sys", "/run"]) k.mount(m.slice(1), m, "tmpfs", 0, "");
  k.mount("erofs", "/sysroot", "erofs", 0, "");
  for (const m of ["/dev", "/proc", "/sys", "/run"]) k.mkdirp("/sysroot" + m);
  k.addFile("/sysroot/sbin/init", "x", 0o755);
  k.fsTypes.set("/", fsType);
  k.getpid = () => pid;
  switchRoot(k, log, "/sysroot", false);
  return { k, lines: logLines(k) };
}

test("switchRoot() frees the initramfs when / is ramfs or tmpfs and this is PID 1", (t) => {
  for (const type of [FsMagic.RAMFS, FsMagic.TMPFS]) {
    const { k, lines } = switched(type);
    t.deepEqual(k.oldRoot, [], "the initramfs was emptied (its /init among the rest)");
    t.true(k.nodes.has("/sbin/init"), "the new root is /");
    t.deepEqual(lines, []);
  }
});

test("switchRoot() moves the API file systems and the new root with MS_MOVE alone, and counts what it freed", (t) => {
  const { k, lines } = switched(FsMagic.RAMFS, 1, false, (_k, log) => log.setDebug(true));
  t.deepEqual(
    k.mountLog.filter((m) => m.flags === 8192).map((m) => [m.source, m.target, m.fstype, m.data]),
    [
      ["/dev", "/sysroot/dev", "", ""],
      ["/proc", "/sysroot/proc", "", ""],
      ["/sys", "/sysroot/sys", "", ""],
      ["/run", "/sysroot/run", "", ""],
      ["/sysroot", "/", "", ""],
    ],
  );
  t.deepEqual(
    lines,
    ["storage-init: freed the initramfs: 6 entries"],
    "/init, /modules, and the four mount points the API file systems moved out of",
  );
});

test("switchRoot() says how many entries of the initramfs it could not free, and the first reason", (t) => {
  const { lines } = switched(FsMagic.RAMFS, 1, false, (k) => {
    k.addFile("/busy", "x");
    k.unlink = (path) => {
      throw new KernelError("unlink", JSON.stringify(path), Errno.EBUSY);
    };
  });
  t.deepEqual(lines, ['storage-init: freeing the initramfs: 2 entries left (unlink "/init": EBUSY)']);
});

test("switchRoot() leaves / alone when it is not an initramfs, or this is not PID 1", (t) => {
  const ext4 = switched(0xef53);
  t.deepEqual(ext4.lines, [
    "storage-init: / is not this PID 1's initramfs (file system type 0xef53): its contents are left alone",
  ]);
  t.true(ext4.k.oldRoot?.includes("/init"), "nothing was deleted");
  const notPid1 = switched(FsMagic.RAMFS, 42);
  t.regex(notPid1.lines[0], /is not this PID 1's initramfs/);
  t.true(notPid1.k.oldRoot?.includes("/init"), "nothing was deleted");
});

test("switchRoot() says that systemd-stub's /.extra is not handed over", (t) => {
  const { k, lines } = switched(FsMagic.RAMFS, 1, true);
  t.false(k.nodes.has("/.extra/credentials/a.cred"));
  t.deepEqual(lines, [
    "storage-init: /.extra (systemd-stub's credentials and extensions from the ESP) is not handed over: unverified",
  ]);
});

test("handOverExtra() copies systemd-stub's /.extra into a second stage, and the PCR signature and key into /run/systemd", (t) => {
  const k = new FakeKernel();
  k.addFile("/.extra/credentials/a.cred", "secret", 0o400);
  k.addFile("/.extra/global_credentials/b.cred", "global");
  k.addFile("/.extra/sysext/tools.raw", "raw");
  k.addFile("/.extra/sysext/deeper/c.raw", "not stub output");
  k.addFile("/.extra/tpm2-pcr-signature.json", '{"sha256":[]}');
  k.addFile("/.extra/tpm2-pcr-public-key.pem", "PEM");
  k.symlink("/etc/shadow", "/.extra/credentials/link.cred");
  k.mkdirp("/sysroot");
  k.mkdirp("/run");
  t.is(handOverExtra(k, "/sysroot"), 5);
  const text = (p: string) => new TextDecoder().decode(k.nodes.get(p)?.data);
  t.is(text("/sysroot/.extra/credentials/a.cred"), "secret");
  t.is((k.nodes.get("/sysroot/.extra/credentials/a.cred")?.mode ?? 0) & 0o777, 0o400, "its mode kept");
  t.is(text("/sysroot/.extra/global_credentials/b.cred"), "global");
  t.is(text("/sysroot/.extra/sysext/tools.raw"), "raw");
  t.is(text("/run/systemd/tpm2-pcr-signature.json"), '{"sha256":[]}');
  t.is(text("/run/systemd/tpm2-pcr-public-key.pem"), "PEM");
  t.false(k.nodes.has("/sysroot/.extra/sysext/deeper"), "no deeper than the stub writes");
  t.false(k.nodes.has("/sysroot/.extra/credentials/link.cred"), "only directories and regular files");
  const none = new FakeKernel();
  none.mkdirp("/sysroot");
  t.is(handOverExtra(none, "/sysroot"), 0);
  t.false(none.nodes.has("/sysroot/.extra"));
});

test("switchRoot() into a second stage that was handed /.extra frees it without the notice", (t) => {
  const k = new FakeKernel();
  const log = new Log(k);
  k.addFile("/.extra/credentials/a.cred", "x");
  for (const m of ["/dev", "/proc", "/sys", "/run"]) k.mount(m.slice(1), m, "tmpfs", 0, "");
  k.mount("overlay", "/sysroot", "overlay", 0, "");
  for (const m of ["/dev", "/proc", "/sys", "/run"]) k.mkdirp("/sysroot" + m);
  k.fsTypes.set("/", FsMagic.RAMFS);
  k.getpid = () => 1;
  switchRoot(k, log, "/sysroot", true);
  t.deepEqual(logLines(k), []);
  t.deepEqual(k.oldRoot, [], "the initramfs, /.extra with it, was emptied");
});
