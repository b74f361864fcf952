/** The native entry point: the C helpers, the real kernel, the real log, the boot. */
import { installNative, LinuxKernel } from "../syscalls/linux.js";
import { Log } from "./log.js";
import { boot } from "./main.js";

installNative();
const kernel = new LinuxKernel();
boot(kernel, new Log(kernel));
