/**
 * Loading kernel modules from the initramfs with finit_module, dependencies first, each once.
 * "Already loaded" (EEXIST) is success. Compressed modules (.ko.xz/.ko.zst/.ko.gz) are handed
 * to the kernel with MODULE_INIT_COMPRESSED_FILE (Linux 6.1+ with CONFIG_MODULE_DECOMPRESS).
 */
import type { Kernel } from "../syscalls/kernel.js";
import { Errno, isErrno, KernelError, OpenFlags, q } from "../syscalls/kernel.js";
import { readSmallFile } from "./blockdev.js";
import type { Log } from "./log.js";
import { loadOrder, parseModuleTable } from "./module_table.js";
import type { ModuleTable } from "./module_table.js";
import { formatMs } from "./numbers.js";

export const MODULES_DIR = "/modules";
export const MODULE_TABLE = MODULES_DIR + "/table";
const MODULE_INIT_COMPRESSED_FILE = 4;

export class ModuleLoader {
  readonly loaded = new Set<string>();
  /** Every finit_module call, in order, with its duration: the timeline shows them. */
  readonly history: Array<{ name: string; ms: number }> = [];

  constructor(
    private readonly k: Kernel,
    private readonly log: Log,
    readonly table: ModuleTable,
    private readonly dir: string = MODULES_DIR,
  ) {}

  /** Reads the table the build wrote into the initramfs. */
  static open(k: Kernel, log: Log): ModuleLoader {
    return new ModuleLoader(k, log, parseModuleTable(readSmallFile(k, MODULE_TABLE, 1 << 20)));
  }

  /** Loads `name` and what it depends on; returns how many modules were loaded now. */
  load(name: string, why: string): number {
    let count = 0;
    for (const m of loadOrder(name, this.table, this.loaded)) {
      const path = this.dir + "/" + m.file;
      const flags = m.file.endsWith(".ko") ? 0 : MODULE_INIT_COMPRESSED_FILE;
      const t0 = this.k.monotonicMs();
      let fd = -1;
      try {
        fd = this.k.open(path, OpenFlags.RDONLY);
      } catch (e) {
        if (isErrno(e, Errno.ENOENT)) throw new KernelError("load module " + m.name + " (for " + why + "):", q(path) + " is missing from the initramfs", Errno.ENOENT);
        throw e;
      }
      const fds = { fd };
      try {
        this.k.finitModule(fds.fd, "", flags);
      } catch (e) {
        this.k.close(fds.fd);
        // EEXIST: loaded already (by us or the kernel). Anything else is a real failure.
        if (!isErrno(e, Errno.EEXIST)) {
          throw new KernelError("load module " + m.name + " (for " + why + "):", "finit_module " + q(path), e instanceof KernelError ? e.errno : Errno.EINVAL);
        }
        this.loaded.add(m.name);
        continue;
      }
      this.k.close(fds.fd);
      const ms = this.k.monotonicMs() - t0;
      this.loaded.add(m.name);
      this.history.push({ name: m.name, ms });
      // Short at info level: every console line costs boot time on a serial console.
      this.log.info("loaded " + m.name + (this.log.debugEnabled ? " for " + why : "") + " (" + formatMs(ms) + " ms)");
      count++;
    }
    return count;
  }

  /** Loads every module of a build-time group (loop, verity, vfat, erofs, efi). */
  loadGroup(group: string): number {
    const names = this.table.groups.get(group);
    if (names === undefined) return 0;
    let n = 0;
    for (const name of names) n += this.load(name, group);
    return n;
  }
}
