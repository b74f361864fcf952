/**
 * Loading kernel modules from the initramfs with finit_module, dependencies first, each once.
 * "Already loaded" (EEXIST) is success. Compressed modules (.ko.xz/.ko.zst/.ko.gz) are handed
 * to the kernel with MODULE_INIT_COMPRESSED_FILE (Linux 6.1+ with CONFIG_MODULE_DECOMPRESS).
 */
import { errnoOf, InitError, withContext } from "../lib/errors.js";
import { formatMs } from "../lib/numbers.js";
import { quote } from "../lib/quote.js";
import type { ModuleParams } from "./cmdline.js";
import type { Log } from "./log.js";
import { loadOrder, matchModalias, parseModuleTable } from "./module_table.js";
import type { ModuleGroup, ModuleTable } from "./module_table.js";
import { Errno, isErrno, KernelError } from "../syscalls/errno.js";
import { readSmallFile } from "../syscalls/files.js";
import { OpenFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

export const MODULES_DIR = "/modules";
export const MODULE_TABLE = MODULES_DIR + "/table";
const MODULE_INIT_COMPRESSED_FILE = 4;

export class ModuleLoader {
  readonly loaded = new Set<string>();
  /** Every finit_module call, in order, with its duration: the timeline shows them. */
  readonly history: Array<{ name: string; ms: number }> = [];

  private readonly k: Kernel;
  private readonly log: Log;
  private readonly table: ModuleTable;
  private readonly dir: string;
  /** Parameters by module, from the command line (Config.moduleParams). */
  private readonly params: ModuleParams[];

  constructor(k: Kernel, log: Log, table: ModuleTable, params: ModuleParams[], dir: string = MODULES_DIR) {
    this.k = k;
    this.log = log;
    this.table = table;
    this.params = params;
    this.dir = dir;
  }

  /**
   * Reads the table the build wrote into the initramfs; throws when it is for another kernel
   * release than the running one (its modules would not load: vermagic).
   */
  static open(k: Kernel, log: Log, params: ModuleParams[]): ModuleLoader {
    const table = parseModuleTable(readSmallFile(k, MODULE_TABLE, 1 << 20));
    const running = readSmallFile(k, "/proc/sys/kernel/osrelease").trim();
    if (table.release !== running) {
      throw new InitError(
        "the initramfs's modules are for kernel " +
          quote(table.release) +
          ", but the running kernel is " +
          quote(running),
      );
    }
    return new ModuleLoader(k, log, table, params);
  }

  /** The command line's parameters for module `name`, or undefined. */
  private paramsOf(name: string): string | undefined {
    for (const m of this.params) if (m.module === name) return m.params;
    return undefined;
  }

  /** The modules of the table whose aliases match `modalias`. */
  modulesFor(modalias: string): string[] {
    return matchModalias(modalias, this.table);
  }

  /** Names of the modules loaded so far, in load order. */
  loadedNames(): string[] {
    const names: string[] = [];
    for (const h of this.history) names.push(h.name);
    return names;
  }

  /** Loads `name` and what it depends on; returns how many modules were loaded now. */
  load(name: string, why: string): number {
    let count = 0;
    for (const m of loadOrder(name, this.table, this.loaded)) {
      const path = this.dir + "/" + m.file;
      const flags = m.file.endsWith(".ko") ? 0 : MODULE_INIT_COMPRESSED_FILE;
      const t0 = this.k.monotonicMs();
      const context = "load module " + m.name + " (for " + why + ")";
      let fd = -1;
      try {
        fd = this.k.open(path, OpenFlags.RDONLY);
      } catch (e) {
        if (isErrno(e, Errno.ENOENT))
          throw new InitError(context + ": " + quote(path) + " is missing from the initramfs", Errno.ENOENT);
        throw withContext(context, e);
      }
      try {
        this.k.finitModule(fd, this.paramsOf(m.name) ?? "", flags);
      } catch (e) {
        this.k.close(fd);
        // EEXIST: loaded already (by us or the kernel). Anything else is a real failure.
        if (!isErrno(e, Errno.EEXIST))
          throw withContext(context, new KernelError("finit_module", quote(path), errnoOf(e)));
        this.loaded.add(m.name);
        continue;
      }
      this.k.close(fd);
      const ms = this.k.monotonicMs() - t0;
      this.loaded.add(m.name);
      this.history.push({ name: m.name, ms });
      // Short at info level: every console line costs boot time on a serial console.
      const params = this.paramsOf(m.name);
      this.log.info(
        "loaded " +
          m.name +
          (params === undefined ? "" : " " + params) +
          (this.log.debugging() ? " for " + why : "") +
          " (" +
          formatMs(ms) +
          " ms)",
      );
      count++;
    }
    return count;
  }

  /** Loads every module of a build-time group. */
  loadGroup(group: ModuleGroup): number {
    const names = this.table.groups.get(group);
    if (names === undefined) return 0;
    let n = 0;
    for (const name of names) n += this.load(name, group);
    return n;
  }
}
