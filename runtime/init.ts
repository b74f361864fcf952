/** The native entry point: the real kernel, the real log, the boot. */
import { LinuxKernel } from "../syscalls/linux.js";
import { Log } from "./log.js";
import { boot } from "./main.js";

const kernel = new LinuxKernel();
boot(kernel, new Log(kernel));
