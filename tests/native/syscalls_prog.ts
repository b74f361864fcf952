/**
 * Exercises a Kernel on a scratch directory and prints what it saw. Run over NodeKernel and,
 * compiled natively, over LinuxKernel: the two outputs must be identical.
 */
import { utf8Decode, utf8Encode } from "../../lib/bytes.js";
import { Errno, errnoName, isErrno, KernelError } from "../../syscalls/errno.js";
import { fileType, FileType, OpenFlags } from "../../syscalls/kernel.js";
import type { Kernel } from "../../syscalls/kernel.js";

function errText(e: unknown): string {
  return e instanceof KernelError ? "KernelError " + e.message + " errno=" + errnoName(e.errno) : "other error";
}

export function run(k: Kernel, scratch: string): string[] {
  const dir = scratch + "/syscalls";
  const out: string[] = [];
  // The scratch path differs between runs; the output names it $DIR.
  const say = (s: string) => out.push(s.split(dir).join("$DIR"));
  out.push("argv after the program " + JSON.stringify(k.argv().slice(1)));
  const env = k.environ();
  say(
    "environ has PATH " +
      env.some((e) => e.startsWith("PATH=")) +
      ", every entry has = " +
      env.every((e) => e.indexOf("=") > 0),
  );
  k.mkdir(dir, 0o755);
  k.mkdir(dir + "/sub", 0o700);
  const fd = k.open(dir + "/file", OpenFlags.WRONLY | OpenFlags.CREAT, 0o644);
  say("write " + k.write(fd, utf8Encode("hello, kernel: ünïcode\n")));
  k.close(fd);
  const rfd = k.open(dir + "/file", OpenFlags.RDONLY);
  const buf = new Uint8Array(64);
  const n = k.read(rfd, buf);
  say("read " + n + " " + JSON.stringify(utf8Decode(buf, 0, n)));
  const p = new Uint8Array(5);
  say("pread " + k.pread(rfd, p, 7) + " " + utf8Decode(p, 0, 5));
  say("pread at end " + k.pread(rfd, p, 1000));
  k.close(rfd);
  const mfd = k.memfd("state", utf8Encode("initrd-timestamp=1 2\n"));
  const m = new Uint8Array(64);
  const mn = k.read(mfd, m);
  say("memfd read " + mn + " " + JSON.stringify(utf8Decode(m, 0, mn)));
  k.close(mfd);
  const wall = k.realtimeMs();
  say("realtime after 2020 " + (wall > 1577836800000) + ", before 2100 " + (wall < 4102444800000));
  k.symlink("file", dir + "/link");
  say("readlink " + k.readlink(dir + "/link"));
  const st = k.stat(dir + "/link");
  const lst = k.lstat(dir + "/link");
  say("stat size " + st.size + " reg " + (fileType(st) === FileType.REG) + " perm " + (st.mode & 0o777).toString(8));
  say("lstat is link " + (fileType(lst) === FileType.LNK));
  say(
    "dir is dir " +
      (fileType(k.stat(dir + "/sub")) === FileType.DIR) +
      " same device " +
      (k.stat(dir).devMinor === st.devMinor),
  );
  const names = k.readdir(dir).map((e) => e.name + ":" + e.type);
  names.sort();
  say("readdir " + names.join(","));
  say("readdir with max 1: " + k.readdir(dir, 1).length + " entries");
  try {
    k.open(dir + "/missing", OpenFlags.RDONLY);
    say("open missing: no error");
  } catch (e) {
    say(errText(e) + " isENOENT " + isErrno(e, Errno.ENOENT));
  }
  try {
    k.mkdir(dir + "/sub", 0o755);
  } catch (e) {
    say(errText(e));
  }
  try {
    k.rmdir(dir);
  } catch (e) {
    say(errText(e));
  }
  k.unlink(dir + "/link");
  k.unlink(dir + "/file");
  k.rmdir(dir + "/sub");
  k.rmdir(dir);
  try {
    k.stat(dir);
  } catch (e) {
    say("after cleanup: " + errText(e));
  }
  const t0 = k.monotonicMs();
  k.sleep(20);
  const dt = k.monotonicMs() - t0;
  say("sleep 20 ms took >= 19 ms: " + (dt >= 19) + ", < 1000 ms: " + (dt < 1000));
  say("pid positive " + (k.getpid() > 0));
  return out;
}
