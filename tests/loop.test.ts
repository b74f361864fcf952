import test from "ava";
import { u32le, u64le } from "../lib/bytes.js";
import { attachLoop, decodeLoopInfo, encodeLoopConfig, LoopFlags, LoopIoctl } from "../runtime/loop.js";
import { Errno, KernelError } from "../syscalls/errno.js";
import { FakeKernel } from "./fake_kernel.js";
import { InitError } from "../lib/errors.js";

test("encodeLoopConfig() lays out struct loop_config byte for byte", (t) => {
  const b = encodeLoopConfig(
    7,
    { offset: 1048576, size: 4096, flags: LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR, blockSize: 4096 },
    "/esp/EFI/x.raw",
  );
  t.is(b.length, 304);
  t.is(u32le(b, 0), 7, "fd");
  t.is(u32le(b, 4), 4096, "block_size");
  t.is(u64le(b, 8 + 24), 1048576, "lo_offset");
  t.is(u64le(b, 8 + 32), 4096, "lo_sizelimit");
  t.is(u32le(b, 8 + 52), 5, "lo_flags");
  t.is(String.fromCharCode(...b.subarray(8 + 56, 8 + 56 + 14)), "/esp/EFI/x.raw");
  t.deepEqual(decodeLoopInfo(b.subarray(8)), { offset: 1048576, size: 4096, flags: 5 });
});

function fakeWithFile(): FakeKernel {
  const k = new FakeKernel();
  k.addFile("/dev/loop-control", "");
  k.addFile("/img", new Uint8Array(8192));
  return k;
}

test("attachLoop() configures a free device read-only and keeps its fd open", (t) => {
  const k = fakeWithFile();
  const l = attachLoop(k, "/img", {
    offset: 4096,
    size: 4096,
    flags: LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR,
    blockSize: 0,
  });
  t.like(l, { path: "/dev/loop0", major: 7, minor: 0 });
  t.true(l.fd > 2);
  t.deepEqual(
    k.ioctls.map((i) => i.request),
    [LoopIoctl.CTL_GET_FREE, LoopIoctl.CONFIGURE, LoopIoctl.GET_STATUS64],
  );
  // What the device was configured with, as the kernel would report it (struct loop_info64).
  const info = new Uint8Array(232);
  k.ioctl(l.fd, LoopIoctl.GET_STATUS64, info);
  t.is(u64le(info, 24), 4096, "lo_offset");
  t.is(u64le(info, 32), 4096, "lo_sizelimit");
  t.is(u32le(info, 52) & (LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR), LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR);
  k.close(l.fd);
});

test("attachLoop() retries when another opener takes the device first (EBUSY)", (t) => {
  const k = fakeWithFile();
  const real = k.ioctl.bind(k);
  let raced = 0;
  k.ioctl = (fd, req, buf) => {
    if (req === LoopIoctl.CONFIGURE && raced++ < 2) throw new KernelError("ioctl", "LOOP_CONFIGURE", Errno.EBUSY);
    return real(fd, req, buf);
  };
  const l = attachLoop(k, "/img", { offset: 0, size: 8192, flags: LoopFlags.READ_ONLY, blockSize: 0 });
  t.is(raced, 3);
  t.is(l.path, "/dev/loop0");
});

test("attachLoop() gives up after a bounded number of races and reports the errno", (t) => {
  const k = fakeWithFile();
  k.ioctl = () => {
    throw new KernelError("ioctl", "LOOP_CONFIGURE", Errno.EBUSY);
  };
  t.is(
    (
      t.throws(() => attachLoop(k, "/img", { offset: 0, size: 8192, flags: LoopFlags.READ_ONLY, blockSize: 0 }), {
        any: true,
      }) as InitError
    ).message,
    "ioctl LOOP_CONFIGURE: EBUSY",
  );
});

test("attachLoop() does not retry real errors", (t) => {
  const k = fakeWithFile();
  let calls = 0;
  k.ioctl = () => {
    calls++;
    throw new KernelError("ioctl", "LOOP_CONFIGURE", Errno.EINVAL);
  };
  t.throws(() => attachLoop(k, "/img", { offset: 0, size: 8192, flags: LoopFlags.READ_ONLY, blockSize: 0 }), {
    any: true,
  });
  t.is(calls, 1);
});

test("attachLoop() on a missing file names it", (t) => {
  const k = fakeWithFile();
  t.is(
    (t.throws(() => attachLoop(k, "/nope", { offset: 0, size: 1, flags: 1, blockSize: 0 }), { any: true }) as InitError)
      .message,
    'open "/nope": ENOENT',
  );
});
