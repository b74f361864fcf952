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

/**
 * Devices every PC has that no storage driver serves, by platform device name or ACPI id: the
 * timers, the speaker, framebuffers, serial ports, keyboard and mouse, buttons, firmware
 * interfaces. Left out of the unmatched list so that what is left is where to look.
 */
const NOT_STORAGE =
  " platform:alarmtimer platform:efi-framebuffer platform:i8042 platform:intel_rapl_msr platform:kgdboc" +
  " platform:microcode platform:pcspkr platform:platform-framebuffer platform:reg-dummy platform:regulatory" +
  " platform:rtc_cmos platform:serial8250 platform:simple-framebuffer platform:vesa-framebuffer" +
  // AC adapter, processor container, power and sleep buttons, interrupt controller, timer, HPET,
  // DMA controller, keyboard, parallel port, serial port, speaker, RTC, battery, power button,
  // lid, sleep button, WMI, mouse, QEMU's fw_cfg
  " acpi:ACPI0003: acpi:ACPI0010: acpi:LNXPWRBN: acpi:LNXSLPBN: acpi:PNP0000: acpi:PNP0100: acpi:PNP0103:" +
  " acpi:PNP0200: acpi:PNP0303: acpi:PNP0400: acpi:PNP0501: acpi:PNP0800: acpi:PNP0B00: acpi:PNP0C0A:" +
  " acpi:PNP0C0C: acpi:PNP0C0D: acpi:PNP0C0E: acpi:PNP0C14: acpi:PNP0F13: acpi:QEMU0002: ";

/** The two hex digits after `key` in `alias`, or "" (modaliases write `bc01sc08`, `ic08`). */
function field(alias: string, key: string): string {
  const at = alias.indexOf(key);
  return at < 0 ? "" : alias.slice(at + key.length, at + key.length + 2).toLowerCase();
}

/**
 * Whether a storage driver could serve the device of `alias`: PCI mass storage (class 01), USB
 * and Fibre Channel controllers (0c03, 0c04), SD hosts (0805); virtio block and SCSI; USB mass
 * storage interfaces; SCSI disks, CD/DVD, optical and RBC devices; MMC and NVMe; device-tree,
 * ACPI and platform devices (on boards the controllers live there) but those every PC has.
 */
export function couldBeStorage(alias: string): boolean {
  if (alias.startsWith("pci:")) {
    const cls = field(alias, "bc") + field(alias, "sc");
    return cls.startsWith("01") || cls === "0c03" || cls === "0c04" || cls === "0805";
  }
  if (alias.startsWith("virtio:"))
    return alias.startsWith("virtio:d00000002v") || alias.startsWith("virtio:d00000008v");
  if (alias.startsWith("usb:")) return field(alias, "ic") === "08";
  if (alias.startsWith("scsi:")) {
    const t = alias.slice(alias.length - 2).toLowerCase();
    return t === "00" || t === "05" || t === "07" || t === "0e";
  }
  if (alias.startsWith("sdio:")) return false;
  // An ACPI device by its first id (`acpi:PNP0501:PNP0500:`), a platform device by its name.
  const id = alias.startsWith("acpi:") ? alias.slice(0, alias.indexOf(":", 5) + 1) : alias;
  return NOT_STORAGE.indexOf(" " + id + " ") < 0;
}

/** What coldplug saw, for the lines that explain a timeout. */
export interface ColdplugReport {
  /** Distinct modaliases read. */
  modaliases: number;
  loaded: string[];
  /** Each module that failed to load, and why. */
  failures: string[];
  /** Modaliases no module matched, of devices a storage driver could serve (couldBeStorage()). */
  unmatched: string[];
  /** How many modaliases no module matched were of devices no storage driver serves. */
  leftOut: number;
  blockDevices: string[];
}

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

  /** What was seen, for the lines that explain a timeout. */
  report(): ColdplugReport {
    const unmatched: string[] = [];
    for (const a of this.unmatched) if (couldBeStorage(a)) unmatched.push(a);
    return {
      modaliases: this.modaliases,
      loaded: this.loader.loadedNames(),
      failures: this.failures.slice(),
      unmatched,
      leftOut: this.unmatched.length - unmatched.length,
      blockDevices: this.blockDevices(),
    };
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
