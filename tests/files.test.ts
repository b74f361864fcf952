import test from "ava";
import { closeQuietly, entryNames, readAttr, readSmallBytes, readSmallFile, withReader } from "../syscalls/files.js";
import { FakeKernel } from "./fake_kernel.js";

test("readSmallFile() reads a whole small file, and at most `max` bytes of a large one", (t) => {
  const k = new FakeKernel();
  k.addFile("/proc/cmdline", "quiet roothash=ab\n");
  t.is(readSmallFile(k, "/proc/cmdline"), "quiet roothash=ab\n");
  const big = "x".repeat(70000);
  k.addFile("/big", big);
  t.is(readSmallFile(k, "/big", 65536).length, 65536);
  t.is(readSmallBytes(k, "/big", 100000).length, 70000, "the buffer grows past its first 4 KiB");
  t.throws(() => readSmallFile(k, "/nope"), { any: true, message: 'open "/nope": ENOENT' });
});

test("readAttr() trims an attribute and is undefined for a missing one", (t) => {
  const k = new FakeKernel();
  k.addFile("/sys/class/block/vda/size", "2048\n");
  t.is(readAttr(k, "/sys/class/block/vda/size"), "2048");
  t.is(readAttr(k, "/sys/class/block/vdb/size"), undefined);
});

test("withReader() reads ranges, short at the end, and closes the file whatever happens", (t) => {
  const k = new FakeKernel();
  k.addFile("/img", new Uint8Array([1, 2, 3, 4, 5]));
  t.deepEqual([...withReader(k, "/img", (read) => read(3, 10))], [4, 5]);
  t.throws(
    () =>
      withReader(k, "/img", () => {
        throw new Error("parser failed");
      }),
    { message: "parser failed" },
  );
  // FakeKernel numbers fds from 3: both readers' fds are closed (a second close is EBADF).
  t.throws(() => k.close(3), { any: true, message: /EBADF/ });
  t.throws(() => k.close(4), { any: true, message: /EBADF/ });
  const fd = k.open("/img", 0);
  closeQuietly(k, [fd, -1, 99]);
  t.throws(() => k.close(fd), { any: true, message: /EBADF/ }, "closed, and the bad fds were ignored");
});

test("entryNames() lists a directory's names without . and ..", (t) => {
  const k = new FakeKernel();
  k.addFile("/sys/class/block/vda/size", "8\n");
  k.addFile("/sys/class/block/vda1/size", "4\n");
  t.deepEqual(entryNames(k, "/sys/class/block").sort(), ["vda", "vda1"]);
  t.throws(() => entryNames(k, "/nope"), { any: true, message: /ENOENT/ });
});
