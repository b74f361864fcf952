/**
 * Targeted coldplug: reads the modalias of every device on the buses that can carry storage,
 * matches each against the build-time table, and loads what matches. Loading a host driver
 * creates new devices (virtio_pci -> virtio devices, virtio_scsi/ahci -> SCSI disks), so
 * `waitFor` runs rounds until a probe finds what the boot waits for; modaliases already handled
 * are remembered and not matched again.
 */
import { errorText } from "../lib/errors.js";
import { Errno, isErrno } from "../syscalls/errno.js";
import { closeQuietly, entryNames, readAttr } from "../syscalls/files.js";
import { PollEvents } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import type { Log } from "./log.js";
import type { ModuleLoader } from "./modules.js";

/** Buses whose devices can be storage controllers or disks. */
export const STORAGE_BUSES = ["pci", "virtio", "scsi", "usb", "mmc", "sdio", "platform", "nvme"];

/** How many unmatched modaliases the timeout line names (a board has dozens of platform devices). */
const UNMATCHED_SHOWN = 16;

export class Coldplug {
  /** Modaliases already matched. */
  readonly seen = new Set<string>();
  /** Devices (bus/name) already read: each modalias is read once. */
  private readonly seenDevices = new Set<string>();
  /** Modules that failed to load, each once, and why: the timeout message names them. */
  private readonly failedModules = new Set<string>();
  private readonly failures: string[] = [];
  /** Distinct modaliases read, for the timeout message. */
  modaliases = 0;
  /** Modaliases no module in the table matched (a controller the build left out, on a new board). */
  private readonly unmatched: string[] = [];
  private readonly k: Kernel;
  private readonly log: Log;
  private readonly loader: ModuleLoader;

  constructor(k: Kernel, log: Log, loader: ModuleLoader) {
    this.k = k;
    this.log = log;
    this.loader = loader;
  }

  /** The modaliases of the devices present now, without those already handled. */
  newModaliases(): string[] {
    const out: string[] = [];
    for (const bus of STORAGE_BUSES) {
      const dir = "/sys/bus/" + bus + "/devices";
      let entries: string[];
      try {
        entries = entryNames(this.k, dir);
      } catch (e) {
        continue; // This kernel has no such bus (yet): nothing to match there.
      }
      for (const dev of entries) {
        const id = bus + "/" + dev;
        if (this.seenDevices.has(id)) continue;
        const alias = readAttr(this.k, dir + "/" + dev + "/modalias");
        // Not readable (yet): a device the kernel is still adding, or one without a modalias.
        // Read again next round rather than remember a failure.
        if (alias === undefined) continue;
        this.seenDevices.add(id);
        if (alias === "" || this.seen.has(alias)) continue;
        this.seen.add(alias);
        this.modaliases++;
        out.push(alias);
      }
    }
    return out;
  }

  /** Block device names present now (for the timeout message). */
  blockDevices(): string[] {
    try {
      const names = entryNames(this.k, "/sys/class/block");
      names.sort();
      return names.length === 0 ? ["none"] : names;
    } catch (e) {
      return ["unknown (" + errorText(e) + ")"];
    }
  }

  /** One round: match new devices and load their modules. Returns how many were loaded. */
  round(): number {
    // porffor: try-catch-stale-locals
    const count = { loaded: 0 };
    for (const alias of this.newModaliases()) {
      const names = this.loader.modulesFor(alias);
      if (names.length > 0) this.log.debug(alias + " -> " + names.join(", "));
      else this.unmatched.push(alias);
      for (const n of names) {
        if (this.failedModules.has(n)) continue;
        try {
          count.loaded += this.loader.load(n, alias);
        } catch (e) {
          // A driver for a device the boot may not need: the boot goes on, and the timeout
          // line names it if the ESP never appears.
          this.failedModules.add(n);
          this.failures.push(errorText(e));
          this.log.error(errorText(e));
        }
      }
    }
    return count.loaded;
  }

  /**
   * What was seen, for a timeout message: modaliases, modules loaded and failed, the modaliases
   * no module matched (where to look when a board's controller is missing), block devices.
   */
  summary(): string {
    const loaded = this.loader.loadedNames();
    return (
      this.modaliases +
      " modaliases seen, modules loaded: " +
      (loaded.length === 0 ? "none" : loaded.join(", ")) +
      (this.failures.length === 0 ? "" : "; failed: " + this.failures.join("; ")) +
      (this.unmatched.length === 0
        ? ""
        : "; no module for: " +
          this.unmatched.slice(0, UNMATCHED_SHOWN).join(", ") +
          (this.unmatched.length > UNMATCHED_SHOWN
            ? " and " + (this.unmatched.length - UNMATCHED_SHOWN) + " more"
            : "")) +
      "; block devices: " +
      this.blockDevices().join(", ")
    );
  }

  /**
   * Coldplug rounds until `find` (a lookup over the devices present now, given the deadline)
   * returns its thing, or `timeoutMs` passes (then undefined). A round that loaded a driver is
   * followed by another at once: a driver's probe usually adds its devices (virtio-blk, with its
   * partitions) before finit_module returns. When a round loads nothing, devices are still to
   * come (asynchronous SCSI, NVMe or USB scans, a disk plugged in later): then kernel uevents wake
   * the loop, from a netlink socket opened only then, after one more round so that nothing that
   * appeared before it is missed; without the socket it polls every 20 ms.
   */
  waitFor<T>(find: (deadline: number) => T | undefined, timeoutMs: number): T | undefined {
    const deadline = this.k.monotonicMs() + timeoutMs;
    const buf = new Uint8Array(8192);
    // porffor: try-catch-stale-locals
    const events = { fd: -1, waiting: false };
    for (;;) {
      const loaded = this.round();
      const found = find(deadline);
      if (found !== undefined) {
        if (events.fd >= 0) this.k.close(events.fd);
        return found;
      }
      if (loaded > 0) continue; // bounded: each module loads once
      if (!events.waiting) {
        events.waiting = true;
        try {
          events.fd = this.k.ueventSocket();
        } catch (e) {
          this.log.warn("no uevent socket (" + errorText(e) + "); polling for devices");
        }
        continue;
      }
      const left = deadline - this.k.monotonicMs();
      if (left <= 0) break;
      if (events.fd < 0) this.k.sleep(Math.min(20, left));
      else if (this.k.poll(events.fd, PollEvents.IN, Math.min(250, left)) > 0) {
        // Drain what arrived: the next round rescans sysfs, the source of truth, so events lost
        // to a full socket (ENOBUFS, a burst of devices) cost nothing but that rescan.
        for (let i = 0; i < 256; i++) {
          try {
            this.k.read(events.fd, buf);
          } catch (e) {
            if (isErrno(e, Errno.EAGAIN) || isErrno(e, Errno.ENOBUFS)) break;
            throw e;
          }
        }
      }
    }
    if (events.fd >= 0) closeQuietly(this.k, [events.fd]);
    return undefined;
  }
}
