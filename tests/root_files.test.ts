import test from "ava";
import { ParseError } from "../lib/errors.js";
import { chooseInit, osReleaseValue, readImageVersion, resolveInRoot } from "../runtime/root_files.js";
import { FakeKernel } from "./fake_kernel.js";

/** A root on /sysroot laid out as Debian's merged /usr: /lib -> usr/lib, /sbin/init -> /lib/systemd/systemd. */
function debianRoot(): FakeKernel {
  const k = new FakeKernel();
  k.addFile("/sysroot/usr/lib/systemd/systemd", "ELF", 0o755);
  k.addSymlink("/sysroot/lib", "usr/lib");
  k.addSymlink("/sysroot/sbin/init", "/lib/systemd/systemd");
  // The initramfs has its own /lib/systemd/systemd: an absolute link must not resolve to it.
  k.addFile("/lib/systemd/systemd", "ELF", 0o755);
  return k;
}

test("resolveInRoot() follows absolute and relative links inside the root, never out of it", (t) => {
  const k = debianRoot();
  t.is(resolveInRoot(k, "/sysroot", "/sbin/init"), "/sysroot/usr/lib/systemd/systemd");
  t.is(resolveInRoot(k, "/sysroot", "/lib/systemd/systemd"), "/sysroot/usr/lib/systemd/systemd");
  k.addSymlink("/sysroot/etc/escape", "../../../../lib/systemd/systemd");
  t.is(resolveInRoot(k, "/sysroot", "/etc/escape"), "/sysroot/usr/lib/systemd/systemd", "'..' stops at the root");
  t.is(resolveInRoot(k, "/sysroot", "/sbin/missing"), undefined);
  k.addSymlink("/sysroot/a", "/b");
  k.addSymlink("/sysroot/b", "/a");
  t.throws(() => resolveInRoot(k, "/sysroot", "/a"), {
    any: true,
    instanceOf: ParseError,
    message: "/a: more than 40 symlinks",
  });
  t.throws(() => resolveInRoot(k, "/sysroot", "/sbin/init/x"), {
    any: true,
    message: '/sbin/init/x: "systemd" is not a directory',
  });
});

test("chooseInit() takes init= or the first executable of the usual list, resolved inside the root", (t) => {
  const k = debianRoot();
  t.deepEqual(chooseInit(k, "/sysroot", undefined), {
    path: "/usr/lib/systemd/systemd",
    tried: ["/usr/lib/systemd/systemd", "/lib/systemd/systemd", "/sbin/init", "/etc/init", "/bin/init"],
  });
  t.is(chooseInit(k, "/sysroot", "/sbin/init").path, "/sbin/init", "through an absolute link inside the root");
  k.addFile("/sysroot/bin/sh", "ELF", 0o644);
  t.deepEqual(chooseInit(k, "/sysroot", "/bin/sh"), { tried: ["/bin/sh"] }, "not executable");
  const bare = new FakeKernel();
  bare.addFile("/lib/systemd/systemd", "ELF", 0o755);
  bare.mkdirp("/sysroot/etc");
  t.is(chooseInit(bare, "/sysroot", undefined).path, undefined, "the initramfs's own init does not count");
});

test("osReleaseValue() reads os-release(5) assignments: quotes, escapes, comments, the last one", (t) => {
  const text = '# IMAGE_VERSION=0\nNAME="Debian GNU/Linux"\nIMAGE_VERSION=1.2\nID=\'debian\'\nX="a \\"b\\" \\\\c"\n';
  t.is(osReleaseValue(text, "IMAGE_VERSION"), "1.2");
  t.is(osReleaseValue(text, "NAME"), "Debian GNU/Linux");
  t.is(osReleaseValue(text, "ID"), "debian");
  t.is(osReleaseValue(text, "X"), 'a "b" \\c');
  t.is(osReleaseValue(text, "VERSION_ID"), undefined);
  t.is(osReleaseValue(text + 'IMAGE_VERSION="2"\n', "IMAGE_VERSION"), "2");
});

test("readImageVersion() prefers /etc/os-release, follows its link inside the root, falls back to /usr/lib", (t) => {
  const k = new FakeKernel();
  k.addFile("/sysroot/usr/lib/os-release", "ID=debian\nIMAGE_VERSION=7\n");
  t.deepEqual(readImageVersion(k, "/sysroot"), { version: "7", file: "/usr/lib/os-release" });
  k.addSymlink("/sysroot/etc/os-release", "../usr/lib/os-release");
  t.deepEqual(readImageVersion(k, "/sysroot"), { version: "7", file: "/etc/os-release" });
  k.addFile("/etc/os-release", "IMAGE_VERSION=99\n");
  k.addSymlink("/sysroot/etc/os-release", "/etc/other");
  k.addFile("/sysroot/etc/other", "ID=debian\n");
  t.deepEqual(
    readImageVersion(k, "/sysroot"),
    { version: "", file: "/etc/os-release" },
    "none: the initramfs's is not read",
  );
  t.deepEqual(readImageVersion(new FakeKernel(), "/sysroot"), { version: "", file: "" });
});
