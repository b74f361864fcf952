/**
 * The test root's init: proves the switch root worked. Prints `ROOT-REACHED` with the uptime,
 * its pid and argv, and the timings storage-init left in /run, then powers off.
 * Compiled by the same porffor pipeline as the init.
 */
import { utf8Encode } from "../lib/bytes.js";
import { readSmallFile } from "../syscalls/files.js";
import { OpenFlags, RebootCmd } from "../syscalls/kernel.js";
import { LinuxKernel } from "../syscalls/linux.js";

const k = new LinuxKernel();
// Through /dev/kmsg when it can: a record is never interleaved with the kernel's own lines.
let kmsg = -1;
try {
  kmsg = k.open("/dev/kmsg", OpenFlags.WRONLY);
} catch (e) {
  kmsg = -1;
}
const say = (s: string) => {
  if (kmsg >= 0) k.write(kmsg, utf8Encode("<5>" + s + "\n"));
  else k.write(1, utf8Encode(s + "\n"));
};
let uptime = "?";
try {
  uptime = readSmallFile(k, "/proc/uptime").split(" ")[0];
} catch (e) {
  uptime = "unreadable";
}
say("ROOT-REACHED uptime=" + uptime + " pid=" + k.getpid() + " argv=" + k.argv().join(" "));
try {
  say("TIMINGS " + readSmallFile(k, "/run/storage-init/timings.json", 65536).trim());
} catch (e) {
  say("TIMINGS missing");
}
k.sync();
k.reboot(RebootCmd.POWER_OFF);
