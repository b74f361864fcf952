/**
 * Targeted coldplug: reads the modalias of every device on the buses that can carry storage,
 * matches each against the build-time table, and loads what matches. Loading a host driver
 * creates new devices (virtio_pci -> virtio devices, virtio_scsi/ahci -> SCSI disks), so the
 * caller runs rounds until the wanted block device shows up; modaliases already handled are
 * remembered and not matched again.
 */
import type { Kernel } from "../syscalls/kernel.js";
import { readAttr } from "./blockdev.js";
import type { Log } from "./log.js";
import { matchModalias } from "./module_table.js";
import type { ModuleLoader } from "./modules.js";

/** Buses whose devices can be storage controllers or disks. */
export const STORAGE_BUSES = ["pci", "virtio", "scsi", "usb", "mmc", "sdio", "platform", "nvme"];

export class Coldplug {
  /** Modaliases already matched. */
  readonly seen = new Set<string>();
  /** Devices (bus/name) already read: each modalias is read once. */
  private readonly seenDevices = new Set<string>();
  /** Devices read, for the timeline and the timeout message. */
  devices = 0;

  constructor(
    private readonly k: Kernel,
    private readonly log: Log,
    private readonly loader: ModuleLoader,
  ) {}

  /** The modaliases of the devices present now, without those already handled. */
  newModaliases(): string[] {
    const out: string[] = [];
    for (const bus of STORAGE_BUSES) {
      const dir = "/sys/bus/" + bus + "/devices";
      let entries: string[];
      try {
        entries = this.k.readdir(dir).map((e) => e.name);
      } catch (e) {
        continue; // This kernel has no such bus (yet): nothing to match there.
      }
      for (const dev of entries) {
        const id = bus + "/" + dev;
        if (this.seenDevices.has(id)) continue;
        this.seenDevices.add(id);
        const alias = readAttr(this.k, dir + "/" + dev + "/modalias");
        if (alias === undefined || alias === "" || this.seen.has(alias)) continue;
        this.seen.add(alias);
        this.devices++;
        out.push(alias);
      }
    }
    return out;
  }

  /** Names of the modules loaded so far, in load order. */
  loadedNames(): string[] {
    return this.loader.history.map((h) => h.name);
  }

  /** Block device names present now (for the timeout message). */
  blockDevices(): string[] {
    try {
      const names = this.k.readdir("/sys/class/block").map((e) => e.name);
      names.sort();
      return names.length === 0 ? ["none"] : names;
    } catch (e) {
      return ["unknown (" + String((e as { message?: string }).message) + ")"];
    }
  }

  /** One round: match new devices and load their modules. Returns how many were loaded. */
  round(): number {
    let loaded = 0;
    for (const alias of this.newModaliases()) {
      const names = matchModalias(alias, this.loader.table);
      if (names.length > 0) this.log.debug(alias + " -> " + names.join(", "));
      for (const n of names) loaded += this.loader.load(n, alias);
    }
    return loaded;
  }
}
