import test from "ava";
import { API_MOUNTS, isMountPoint, mkdirAll, mountApiFilesystems, mountOnce, parentDir } from "../runtime/mount.js";
import { FakeKernel } from "./fake_kernel.js";

/** mount(2)'s flags by their numbers in uapi linux/mount.h, not through the code's own table. */
const NOSUID = 2;
const NODEV = 4;
const NOEXEC = 8;
const STRICTATIME = 1 << 24;

test("mkdirAll() makes every missing directory and takes existing ones as they are", (t) => {
  const k = new FakeKernel();
  mkdirAll(k, "/run/storage-init/x", 0o755);
  mkdirAll(k, "/run/storage-init/x", 0o755);
  t.true(k.nodes.has("/run/storage-init") && k.nodes.has("/run/storage-init/x"));
});

test("parentDir() and isMountPoint()", (t) => {
  t.is(parentDir("/a/b"), "/a");
  t.is(parentDir("/a"), "/");
  const k = new FakeKernel();
  t.false(isMountPoint(k, "/proc"));
  k.mount("proc", "/proc", "proc", 0, "");
  t.true(isMountPoint(k, "/proc"));
});

test("mountApiFilesystems() mounts /proc, /sys, /dev and /run once, as systemd's initrd interface asks", (t) => {
  const k = new FakeKernel();
  mountApiFilesystems(k);
  mountApiFilesystems(k);
  t.deepEqual(
    k.mountLog.map((m) => [m.source, m.target, m.fstype, m.flags, m.data]),
    [
      ["proc", "/proc", "proc", NOSUID | NODEV | NOEXEC, ""],
      ["sysfs", "/sys", "sysfs", NOSUID | NODEV | NOEXEC, ""],
      ["devtmpfs", "/dev", "devtmpfs", NOSUID | STRICTATIME, "mode=755"],
      ["tmpfs", "/run", "tmpfs", NOSUID | NODEV | STRICTATIME, "mode=755"],
    ],
  );
  t.is(API_MOUNTS.length, 4);
  mountOnce(k, { source: "efivarfs", target: "/sys/firmware/efi/efivars", fstype: "efivarfs", flags: 1, data: "" });
  t.true(k.nodes.has("/sys/firmware/efi/efivars"), "the mount point is made");
});
