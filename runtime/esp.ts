/**
 * Finding the EFI System Partition: `storage_init.esp=` (PARTUUID=, PARTLABEL= or a /dev path),
 * else the partition named by the `LoaderDevicePartUUID` EFI variable that systemd-boot and
 * systemd-stub set, else the first partition with the ESP type GUID on any disk.
 *
 * `findEsps` returns every partition the selector matches on the disks visible now (several: an
 * installer stick, a cloned disk, an ESP on each of two disks), in the order of the disks' names;
 * `waitForEsp` runs coldplug until one is visible, and `mountEsp` mounts one (through a loop
 * device when the kernel made no partition node). A selector that is itself invalid throws.
 */
import { errorText, InitError, ParseError } from "../lib/errors.js";
import { PartitionType } from "../lib/facts.js";
import { parseDecimal } from "../lib/numbers.js";
import { isGuid, utf16leText } from "../lib/hex.js";
import { quote } from "../lib/quote.js";
import { readAttr, readSmallBytes } from "../syscalls/files.js";
import { MountFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";
import { listDisks, readGptFile } from "./blockdev.js";
import type { Coldplug, ColdplugReport } from "./coldplug.js";
import type { Gpt, GptPartition } from "./gpt.js";
import type { Log } from "./log.js";
import { attachLoop, LoopFlags } from "./loop.js";
import type { ModuleLoader } from "./modules.js";
import { mkdirAll, mountOnce } from "./mount.js";

export const LOADER_DEVICE_PART_UUID =
  "/sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

export interface EspSelector {
  kind: "partuuid" | "partlabel" | "device" | "type";
  value: string;
  /** Where the selector came from, for messages. */
  source: string;
}

export interface Esp {
  /** The partition's device node, or "" when the kernel made none (see offset/size). */
  device: string;
  /** The whole disk ("/dev/vda"), "" when the ESP was given as a device path. */
  disk: string;
  /** Where the ESP lies on the disk, in bytes: used through a loop device when there is no node. */
  offset: number;
  size: number;
  partUuid: string;
  how: string;
}

/** Interprets `storage_init.esp=`. */
export function parseEspSelector(v: string): EspSelector {
  const src = "storage_init.esp=" + v;
  if (v.startsWith("PARTUUID=")) return { kind: "partuuid", value: v.slice(9).toLowerCase(), source: src };
  if (v.startsWith("PARTLABEL=")) return { kind: "partlabel", value: v.slice(10), source: src };
  if (v.startsWith("/dev/") && v.indexOf("/../") < 0) return { kind: "device", value: v, source: src };
  throw new ParseError(
    "storage_init.esp= must be PARTUUID=<uuid>, PARTLABEL=<label> or /dev/<node>: " + quote(v.slice(0, 80)),
  );
}

/** The selector when nothing names the ESP: every partition of the ESP type. */
export function typeSelector(): EspSelector {
  return { kind: "type", value: "", source: "the ESP partition type" };
}

/**
 * True when the GPT partition `p` is one `sel` selects (a device path selects no GPT entry):
 * of the ESP type always, and with the PARTUUID or label a selector names. A partition that
 * carries the ESP's PARTUUID but another type (a stick's data partition given a cloned
 * PARTUUID) is not an ESP.
 */
export function selects(sel: EspSelector, p: GptPartition): boolean {
  if (p.typeGuid !== PartitionType.ESP) return false;
  return (
    (sel.kind === "partuuid" && p.partGuid === sel.value) ||
    (sel.kind === "partlabel" && p.name === sel.value) ||
    sel.kind === "type"
  );
}

/**
 * The EFI variable's GUID: 4 attribute bytes, then a NUL-terminated UTF-16LE string.
 * Returns the lower-case GUID, or undefined when the value is malformed.
 */
export function parseLoaderDevicePartUuid(b: Uint8Array): string | undefined {
  const s = utf16leText(b, 4, b.length);
  return isGuid(s) ? s.toLowerCase() : undefined;
}

/** The selector from the EFI variable, when the firmware passed through systemd-boot/stub. */
export function readLoaderSelector(k: Kernel): EspSelector | undefined {
  let b: Uint8Array;
  try {
    b = readSmallBytes(k, LOADER_DEVICE_PART_UUID, 256);
  } catch (e) {
    return undefined;
  }
  const uuid = parseLoaderDevicePartUuid(b);
  return uuid === undefined ? undefined : { kind: "partuuid", value: uuid, source: "LoaderDevicePartUUID" };
}

/**
 * A disk's GPT; the reason it has none (kept: the disk is not where the ESP is); or undefined
 * when reading it failed (an I/O error may pass: it is read again next round).
 */
function readDiskGpt(k: Kernel, log: Log, name: string, size: number): Gpt | string | undefined {
  try {
    const gpt = readGptFile(k, "/dev/" + name, size);
    if (gpt.usedHeader !== "primary")
      log.warn("/dev/" + name + ": primary GPT is damaged (" + gpt.primaryProblem + "); using the backup");
    if (gpt.skipped.length > 0) log.warn("/dev/" + name + ": GPT entries ignored: " + gpt.skipped.join("; "));
    return gpt;
  } catch (e) {
    const why = errorText(e);
    log.debug("/dev/" + name + ": " + why);
    return e instanceof ParseError ? why : undefined;
  }
}

/** What findEsp learned in earlier rounds: disks are read once. */
export interface EspSearchState {
  /** "name size" -> the disk's GPT, or its error message. */
  gpts: Map<string, Gpt | string>;
  /** Disks ("name size") already warned of. */
  warned: Set<string>;
}

export function newEspSearch(): EspSearchState {
  return { gpts: new Map(), warned: new Set() };
}

/**
 * Every partition the selector matches on the disks visible now, in disk-name order; undefined
 * when there is none yet. `state` carries the GPTs read in earlier rounds
 * (a disk's table is read, and a damaged primary reported, once).
 *
 * When the primary GPT is damaged the kernel does not read the backup (it needs `gpt` on its
 * command line, block/partitions/efi.c) and makes no partition nodes; the ESP is then returned
 * with device "" and its byte range, for a loop device over the disk.
 */
export function findEsps(
  k: Kernel,
  log: Log,
  sel: EspSelector,
  state: EspSearchState,
  deadline: number,
): Esp[] | undefined {
  if (sel.kind === "device") {
    try {
      k.stat(sel.value);
    } catch (e) {
      return undefined;
    }
    return [{ device: sel.value, disk: "", offset: 0, size: 0, partUuid: "", how: sel.source }];
  }
  const out: Esp[] = [];
  for (const d of listDisks(k)) {
    const key = d.name + " " + d.size;
    let known = state.gpts.get(key);
    if (known === undefined) {
      // A slow disk ahead of the ESP's must not stretch the wait past storage_init.timeout.
      if (k.monotonicMs() > deadline) break;
      known = readDiskGpt(k, log, d.name, d.size);
      if (known === undefined) continue;
      state.gpts.set(key, known);
    }
    if (typeof known === "string") continue;
    const gpt = known;
    for (const p of gpt.partitions) {
      if (!selects(sel, p)) {
        if (sel.kind === "partuuid" && p.partGuid === sel.value && !state.warned.has(key)) {
          log.warn(
            "/dev/" + d.name + ": partition " + p.number + " has the ESP's PARTUUID but not its type: not taken",
          );
          state.warned.add(key);
        }
        continue;
      }
      const part = d.partitions.get(p.number);
      const found = {
        device: "",
        disk: "/dev/" + d.name,
        offset: p.offset,
        size: p.size,
        partUuid: p.partGuid,
        how: sel.source,
      };
      // The kernel partitions a disk only by a primary GPT it accepts, in the disk's logical block
      // size: otherwise there are no partition nodes to wait for, and the ESP is reached by its range.
      const lbs = parseDecimal(readAttr(k, "/sys/class/block/" + d.name + "/queue/logical_block_size") ?? "", 1);
      if (!gpt.kernelPartitions || (lbs !== undefined && lbs !== gpt.sectorSize)) out.push(found);
      else if (part !== undefined) {
        // The kernel's partition must be the GPT entry's range (an MBR beside the GPT may have
        // given the kernel other partitions): else the range it is.
        const start = parseDecimal(readAttr(k, "/sys/class/block/" + part + "/start") ?? "", 512);
        const size = parseDecimal(readAttr(k, "/sys/class/block/" + part + "/size") ?? "", 512);
        if (start !== p.offset || size !== p.size) {
          log.warn(
            "/dev/" +
              part +
              " is not the GPT's partition " +
              p.number +
              " (bytes " +
              start +
              "+" +
              size +
              "): using the GPT's range",
          );
        } else found.device = "/dev/" + part;
        out.push(found);
      } else log.debug("/dev/" + d.name + ": partition " + p.number + " matches but has no device node yet");
    }
  }
  return out.length === 0 ? undefined : out;
}

/**
 * Which ESP to look for: `storage_init.esp=`, else the `LoaderDevicePartUUID` EFI variable
 * (on EFI systems: efivarfs is mounted for it), else the ESP type GUID.
 */
export function espSelector(k: Kernel, log: Log, configured: string | undefined, loader: ModuleLoader): EspSelector {
  if (configured !== undefined) return parseEspSelector(configured);
  if (readAttr(k, "/sys/firmware/efi/fw_platform_size") !== undefined) {
    loader.loadGroup("efi");
    try {
      mountOnce(k, {
        source: "efivarfs",
        target: "/sys/firmware/efi/efivars",
        fstype: "efivarfs",
        flags: MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC | MountFlags.RDONLY,
        data: "",
      });
    } catch (e) {
      // Without efivarfs the EFI variable cannot be read; the type-GUID search still works.
      log.warn("cannot mount efivarfs: " + errorText(e) + "; looking for the ESP by type");
    }
    const sel = readLoaderSelector(k);
    if (sel !== undefined) return sel;
  }
  return typeSelector();
}

/** How many modaliases no module matched the timeout's details name (a board has dozens of platform devices). */
const UNMATCHED_SHOWN = 8;

/**
 * The fatal line's length to aim for: an 80-column console shows it in three rows. What comes
 * before the cause ("storage-init: failed to find the ESP: ") is about 40 characters.
 */
const LINE_MAX = 200;
const PREFIX = 40;

/** `s` in at most `max` characters: when longer, its middle cut to "...", so that an errno at its end stays. */
function clip(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 33) + "..." + s.slice(s.length - 30);
}

/** The first of `items`, and how many more there are. */
function firstOf(items: string[], more: string): string {
  return items[0] + (items.length > 1 ? " (and " + (items.length - 1) + " more " + more + ")" : "");
}

/**
 * Why no ESP appeared: the detail lines to log before the fatal line, likeliest cause first (a
 * disk whose GPT was refused or whose entries were left out, a module that failed, devices a
 * storage driver could serve that no module matched, then what was loaded and the block devices),
 * and the fatal line's text, its cause first, then what was waited for and `waited.also` (what
 * the sources searched before the ESPs lacked, "; ..."; kept whole).
 */
export function espTimeout(
  waited: { seconds: number; what: string; also?: string },
  disks: string[],
  seen: ColdplugReport,
): { details: string[]; message: string } {
  const details = disks.slice();
  for (const f of seen.failures) details.push("module failed: " + f);
  const shown = seen.unmatched.slice(0, UNMATCHED_SHOWN);
  if (shown.length > 0) {
    const more = seen.unmatched.length - shown.length;
    details.push(
      "no module for " +
        seen.unmatched.length +
        " device" +
        (seen.unmatched.length === 1 ? "" : "s") +
        " a storage driver could serve: " +
        shown.join(", ") +
        (more > 0 ? " and " + more + " more" : ""),
    );
  }
  details.push("modules loaded: " + (seen.loaded.length === 0 ? "none" : seen.loaded.join(", ")));
  details.push("block devices: " + seen.blockDevices.join(", "));
  details.push(
    seen.modaliases +
      " modaliases seen" +
      (seen.leftOut > 0 ? "; " + seen.leftOut + " of devices no storage driver serves not listed" : ""),
  );
  let cause: string;
  if (disks.length > 0) cause = firstOf(disks, "disks");
  else if (seen.failures.length > 0) cause = firstOf(seen.failures, "modules failed");
  else if (seen.unmatched.length > 0) cause = "no module for " + firstOf(seen.unmatched, "devices");
  else if (seen.blockDevices.length === 1 && seen.blockDevices[0] === "none") cause = "no disk appeared";
  else cause = "no partition of " + seen.blockDevices.join(", ") + " is it";
  // The cause before what was waited for: the selector goes when both do not fit.
  const also = waited.also ?? "";
  let tail = "; waited " + waited.seconds + " s for the ESP (" + waited.what + ")" + also;
  if (PREFIX + cause.length + tail.length > LINE_MAX) tail = "; waited " + waited.seconds + " s for the ESP" + also;
  const room = LINE_MAX - PREFIX - tail.length;
  return { details, message: clip(cause, room) + tail };
}

/**
 * Runs coldplug until an ESP is visible and returns every ESP visible then; after
 * `timeoutMs`, logs why none appeared (espTimeout()'s detail lines) and throws its cause, with
 * `also` (espTimeout()).
 */
export function waitForEsp(
  k: Kernel,
  log: Log,
  cold: Coldplug,
  sel: EspSelector,
  timeoutMs: number,
  also: string = "",
): Esp[] {
  const search = newEspSearch();
  const esps = cold.waitFor((deadline) => findEsps(k, log, sel, search, deadline), timeoutMs);
  if (esps !== undefined) return esps;
  // The value, unless the source says it already (storage_init.esp=PARTUUID=...).
  const what = sel.source.toLowerCase().endsWith(sel.value.toLowerCase()) ? sel.source : sel.source + " " + sel.value;
  // Why each disk read was not the ESP's: a GPT refused here, or entries of it left out.
  const disks: string[] = [];
  for (const [key, known] of search.gpts) {
    const why = typeof known === "string" ? known : known.skipped.join("; ");
    if (why !== "") disks.push("/dev/" + key.slice(0, key.indexOf(" ")) + ": " + why);
  }
  const t = espTimeout({ seconds: timeoutMs / 1000, what, also }, disks, cold.report());
  for (const line of t.details) log.error(line);
  throw new InitError(t.message);
}

/** The ESP's partition node, or its range of the disk. */
export function espName(esp: Esp): string {
  return esp.device !== "" ? esp.device : esp.disk + " bytes " + esp.offset + "+" + esp.size;
}

/**
 * Mounts the ESP read-only on `target` (vfat; nodev, nosuid, noexec) and returns its device:
 * the partition node, or a read-only loop device over the ESP's range of the disk, which the
 * mount then holds. A failure leaves the loop device attached: the boot ends in the failure action.
 */
export function mountEsp(k: Kernel, log: Log, loader: ModuleLoader, esp: Esp, target: string): string {
  if (esp.device !== "") {
    log.info("ESP " + esp.device + " (found by " + esp.how + ")");
    mountVfat(k, loader, esp.device, target);
    return esp.device;
  }
  loader.loadGroup("loop");
  const l = attachLoop(k, esp.disk, {
    offset: esp.offset,
    size: esp.size,
    flags: LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR,
    blockSize: 0,
  });
  log.info("ESP at " + espName(esp) + " (found by " + esp.how + "; the kernel made no partition node) on " + l.path);
  mountVfat(k, loader, l.path, target);
  // The mount holds the loop device now.
  k.close(l.fd);
  return l.path;
}

/** Mounts `device` on `target` as an ESP is mounted: vfat, read-only, nodev, nosuid, noexec. */
function mountVfat(k: Kernel, loader: ModuleLoader, device: string, target: string): void {
  loader.loadGroup("vfat");
  mkdirAll(k, target, 0o755);
  k.mount(device, target, "vfat", MountFlags.RDONLY | MountFlags.NODEV | MountFlags.NOSUID | MountFlags.NOEXEC, "");
}
