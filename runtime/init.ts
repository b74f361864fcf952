/** The native entry point: the real kernel, the real log, the boot. */
import { LinuxKernel, nativeCrc32 } from "../syscalls/linux.js";
import { setCrc32Impl } from "./crc32.js";
import { Log } from "./log.js";
import { boot } from "./main.js";

setCrc32Impl(nativeCrc32);
const kernel = new LinuxKernel();
boot(kernel, new Log(kernel));
