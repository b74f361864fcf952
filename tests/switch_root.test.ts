import test from "ava";
import { kmsgRecord } from "../runtime/log.js";
import { chooseInit, deleteTree, initArgv } from "../runtime/switch_root.js";
import { FakeKernel } from "./fake_kernel.js";

test("initArgv() tells systemd it was switched into and passes the kernel's extra words to others", (t) => {
  t.deepEqual(initArgv("/usr/lib/systemd/systemd", ["single"]), [
    "/usr/lib/systemd/systemd",
    "--switched-root",
    "--system",
    "single",
  ]);
  t.deepEqual(initArgv("/sbin/init", ["single"]), ["/sbin/init", "single"]);
});

test("chooseInit() takes init= or the first executable of the usual list", (t) => {
  const k = new FakeKernel();
  k.addFile("/lib/systemd/systemd", "ELF", 0o755);
  k.addFile("/sbin/init", "ELF", 0o644);
  t.deepEqual(chooseInit(k, undefined), {
    path: "/lib/systemd/systemd",
    tried: ["/usr/lib/systemd/systemd", "/lib/systemd/systemd", "/sbin/init", "/etc/init", "/bin/init"],
  });
  t.deepEqual(chooseInit(k, "/sbin/init"), { tried: ["/sbin/init"] }, "not executable");
  k.addSymlink("/usr/lib/systemd/systemd", "/lib/systemd/systemd");
  t.is(chooseInit(k, undefined).path, "/usr/lib/systemd/systemd", "symlinks are followed");
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
  deleteTree(k, "/", root.devMajor, root.devMinor, "/sysroot");
  t.deepEqual([...k.nodes.keys()].sort(), [
    "/",
    "/run",
    "/run/keep",
    "/sysroot",
    "/sysroot/sbin",
    "/sysroot/sbin/init",
  ]);
});
