/**
 * The test root's init: proves the switch root worked. Prints `ROOT-REACHED` with the uptime,
 * its pid and argv, the timings and the choice storage-init left in /run (`TIMINGS`,
 * `ROOT-JSON`), the memory in use (`MEMINFO`), whether /etc is writable (`WRITABLE`, `READ-ONLY`), and its mount table (`MOUNT`
 * lines, /proc/self/mountinfo), then powers off.
 *
 * As an updater in the booted system would (storage_init_test.install_from=DEVICE
 * storage_init_test.install_to=PATH on the command line): when PATH is not on the ESP yet, it
 * remounts the ESP storage-init left at /run/storage-init/esp read-write, copies DEVICE's bytes
 * (a DDI) to PATH, remounts it read-only and says `INSTALLED`. Compiled by the same porffor
 * pipeline as the init.
 */
import { utf8Encode } from "../lib/bytes.js";
import { errorText } from "../lib/errors.js";
import { splitText } from "../lib/text.js";
import { cmdlinePairs } from "../lib/cmdline_words.js";
import { readSmallFile } from "../syscalls/files.js";
import { MountFlags, OpenFlags, RebootCmd } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { LinuxKernel } from "../syscalls/linux.js";

const ESP = "/run/storage-init/esp";

const k = new LinuxKernel();
// Through /dev/kmsg when it can: a record is never interleaved with the kernel's own lines.
let kmsg = -1;
try {
  kmsg = k.open("/dev/kmsg", OpenFlags.WRONLY);
} catch (e) {
  kmsg = -1;
}
// A kmsg record holds at most 1024 bytes less its header (LOG_LINE_MAX): a longer line (the
// timings of a boot that tried several DDIs) goes to the console as it is.
const say = (s: string) => {
  if (kmsg >= 0 && s.length < 900) k.write(kmsg, utf8Encode("<5>" + s + "\n"));
  else k.write(1, utf8Encode(s + "\n"));
};

/** Copies the bytes of `from` (a block device) to the new file `to`; returns how many. */
function copy(k: Kernel, from: string, to: string): number {
  const src = k.open(from, OpenFlags.RDONLY);
  const dst = k.open(to, OpenFlags.WRONLY | OpenFlags.CREAT | OpenFlags.TRUNC, 0o644);
  const buf = new Uint8Array(1048576);
  let total = 0;
  for (;;) {
    const n = k.read(src, buf);
    if (n === 0) break;
    let done = 0;
    while (done < n) done += k.write(dst, buf.subarray(done, n));
    total += n;
  }
  k.close(src);
  k.close(dst);
  return total;
}

/** The update step: `to` on the ESP from `from`, unless it is there already. */
function install(from: string, to: string): void {
  try {
    k.stat(ESP + to);
    say("INSTALLED already " + to);
    return;
  } catch (e) {
    // Not there yet: install it.
  }
  const keep = MountFlags.NODEV | MountFlags.NOSUID | MountFlags.NOEXEC;
  k.mount("", ESP, "", MountFlags.REMOUNT | keep, "");
  const n = copy(k, from, ESP + to);
  k.sync();
  k.mount("", ESP, "", MountFlags.REMOUNT | MountFlags.RDONLY | keep, "");
  say("INSTALLED " + n + " bytes from " + from + " to " + to);
}

let uptime = "?";
try {
  uptime = readSmallFile(k, "/proc/uptime").split(" ")[0];
} catch (e) {
  uptime = "unreadable";
}
say("ROOT-REACHED uptime=" + uptime + " pid=" + k.getpid() + " argv=" + k.argv().join(" "));
// The kmsg rate limit (10 lines in 5 s) would drop the mount table.
try {
  const fd = k.open("/proc/sys/kernel/printk_devkmsg", OpenFlags.WRONLY);
  k.write(fd, utf8Encode("on\n"));
  k.close(fd);
} catch (e) {
  // Then some lines may be dropped, and the test reading them says so.
}
try {
  say("TIMINGS " + readSmallFile(k, "/run/storage-init/timings.json", 65536).trim());
} catch (e) {
  say("TIMINGS missing");
}
try {
  say("ROOT-JSON " + readSmallFile(k, "/run/storage-init/root.json", 65536).trim());
} catch (e) {
  say("ROOT-JSON missing");
}
// The memory in use as the root starts (a DDI in memory against one on an ESP): MemTotal,
// MemAvailable and Shmem (tmpfs, where an initramfs's files lie), in kB.
try {
  const want = ["MemTotal:", "MemAvailable:", "Shmem:"];
  const got: string[] = [];
  for (const line of splitText(readSmallFile(k, "/proc/meminfo", 65536), "\n")) {
    const words = splitText(line, " ").filter((w) => w !== "");
    if (words.length >= 2 && want.indexOf(words[0]) >= 0) got.push(words[0].slice(0, -1) + "=" + words[1]);
  }
  say("MEMINFO " + got.join(" "));
} catch (e) {
  say("MEMINFO unreadable: " + errorText(e));
}
// A second stage writes where a cpio initrd is writable: /etc.
try {
  const fd = k.open("/etc/storage-init-test", OpenFlags.WRONLY | OpenFlags.CREAT | OpenFlags.TRUNC, 0o644);
  k.close(fd);
  say("WRITABLE /etc");
} catch (e) {
  say("READ-ONLY /etc: " + errorText(e));
}
try {
  for (const line of splitText(readSmallFile(k, "/proc/self/mountinfo", 65536).trim(), "\n")) say("MOUNT " + line);
} catch (e) {
  say("MOUNT unreadable: " + errorText(e));
}
let from = "";
let to = "";
for (const { key, value } of cmdlinePairs(readSmallFile(k, "/proc/cmdline", 65536))) {
  if (key === "storage_init_test.install_from" && value !== undefined) from = value;
  if (key === "storage_init_test.install_to" && value !== undefined) to = value;
}
if (from !== "" && to !== "") {
  try {
    install(from, to);
  } catch (e) {
    say("INSTALL FAILED " + errorText(e));
  }
}
k.sync();
k.reboot(RebootCmd.POWER_OFF);
