/**
 * The boot: runs the phases in order and decides what is fatal. Every failure ends in one
 * clear line and the configured action; boot() never returns. runtime/init.ts calls it with
 * the real kernel; tests call it with FakeKernel.
 */
import type { Kernel } from "../syscalls/kernel.js";
import { AtFlags, closeQuietly, Errno, isErrno, MountFlags, PollEvents } from "../syscalls/kernel.js";
import { readAttr, readSmallFile, withReader } from "./blockdev.js";
import { defaultConfig, parseCmdline } from "./cmdline.js";
import type { Config } from "./cmdline.js";
import { Coldplug } from "./coldplug.js";
import { readDdi, selectDdiPartitions } from "./ddi.js";
import type { DdiLayout } from "./ddi.js";
import { findEsp, newEspSearch, parseEspSelector, readLoaderSelector } from "./esp.js";
import type { Esp, EspSelector } from "./esp.js";
import { finalAction } from "./failure.js";
import { setDevkmsg } from "./log.js";
import type { Log } from "./log.js";
import { attachLoop, LoopFlags } from "./loop.js";
import type { LoopDevice } from "./loop.js";
import { ModuleLoader } from "./modules.js";
import { mkdirAll, mountApiFilesystems, mountOnce } from "./mount.js";
import { chooseInit, initArgv, switchRoot } from "./switch_root.js";
import { formatMs } from "./numbers.js";
import { Timings } from "./timings.js";
import { checkVerityGeometry, createVerityDevice, parseVeritySuperblock, verityParams, verityStatus, VERITY_SUPERBLOCK_SIZE } from "./verity.js";

export const VERSION = "0.1.0";
export const ESP_MOUNT = "/esp";
export const SYSROOT = "/sysroot";
/** The dm device name of the verified root. */
export const VERITY_NAME = "root";

declare const STORAGE_INIT_ARCH: string | undefined;
/** The architecture the binary was built for (esbuild defines it); Node tests use x86-64. */
export const ARCH = typeof STORAGE_INIT_ARCH === "undefined" ? "x86-64" : STORAGE_INIT_ARCH;

export function errorText(e: unknown): string {
  const m = (e as { message?: unknown }).message;
  return typeof m === "string" ? m : String(e);
}

/**
 * What the catch block in boot() needs. An object, not locals: porffor's try/catch is
 * setjmp/longjmp, and a local assigned inside try reads stale in catch (tests/native defects).
 */
interface BootState {
  phase: string;
  config: Config;
  /** Loop device fds held until their device is in use (AUTOCLEAR). */
  openFds: number[];
}

/** Which ESP to look for, in the order of the README: command line, EFI variable, type GUID. */
function espSelector(k: Kernel, log: Log, config: Config, loader: ModuleLoader): EspSelector {
  if (config.esp !== undefined) return parseEspSelector(config.esp);
  if (readAttr(k, "/sys/firmware/efi/fw_platform_size") !== undefined) {
    loader.loadGroup("efi");
    try {
      mountOnce(k, { source: "efivarfs", target: "/sys/firmware/efi/efivars", fstype: "efivarfs", flags: MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC | MountFlags.RDONLY, data: "" });
    } catch (e) {
      // Without efivarfs the EFI variable cannot be read; the type-GUID search still works.
      log.warn("cannot mount efivarfs: " + errorText(e) + "; looking for the ESP by type");
    }
    const sel = readLoaderSelector(k);
    if (sel !== undefined) return sel;
  }
  return { kind: "type", value: "", source: "the ESP partition type" };
}

/**
 * Coldplug rounds until the ESP is visible or the timeout passes. A round that loaded a driver
 * is followed by another at once: a driver's probe usually adds its devices (virtio-blk, with its
 * partitions) before finit_module returns. When a round loads nothing, devices are still to come
 * (asynchronous SCSI, NVMe or USB scans, a disk plugged in later): then kernel uevents wake the
 * loop, from a netlink socket opened only then, after one more round so that nothing that
 * appeared before it is missed; without the socket it polls every 20 ms.
 */
function waitForEsp(k: Kernel, log: Log, config: Config, cold: Coldplug, sel: EspSelector): Esp {
  const deadline = k.monotonicMs() + config.timeoutMs;
  let uevents = -1;
  let waiting = false;
  const buf = new Uint8Array(8192);
  const search = newEspSearch();
  for (;;) {
    const loaded = cold.round();
    const esp = findEsp(k, log, sel, search);
    if (esp !== undefined) {
      if (uevents >= 0) k.close(uevents);
      return esp;
    }
    if (loaded > 0) continue; // bounded: each module loads once
    if (!waiting) {
      waiting = true;
      try {
        uevents = k.ueventSocket();
      } catch (e) {
        log.warn("no uevent socket (" + errorText(e) + "); polling for devices");
      }
      continue;
    }
    const left = deadline - k.monotonicMs();
    if (left <= 0) break;
    if (uevents < 0) k.sleep(Math.min(20, left));
    else if (k.poll(uevents, PollEvents.IN, Math.min(250, left)) > 0) {
      // Drain what arrived; the next round rescans sysfs, which is the source of truth.
      for (let i = 0; i < 64; i++) {
        try {
          k.read(uevents, buf);
        } catch (e) {
          if (!isErrno(e, Errno.EAGAIN)) throw e;
          break;
        }
      }
    }
  }
  if (uevents >= 0) closeQuietly(k, [uevents]);
  const loaded = cold.loadedNames();
  throw new Error(
    "timed out after " + config.timeoutMs / 1000 + " s waiting for the ESP (" + sel.source + (sel.value === "" ? "" : " " + sel.value) + "); " +
      cold.devices + " devices seen, modules loaded: " + (loaded.length === 0 ? "none" : loaded.join(", ")) + "; block devices: " + cold.blockDevices().join(", "),
  );
}

/** The ESP's device node: its partition, or a read-only loop over its range of the disk. */
function espDevice(k: Kernel, log: Log, loader: ModuleLoader, esp: Esp, st: BootState): string {
  if (esp.device !== "") {
    log.info("ESP " + esp.device + " (found by " + esp.how + ")");
    return esp.device;
  }
  st.phase = "attach the ESP on " + esp.disk;
  loader.loadGroup("loop");
  const l = attachLoop(k, esp.disk, { offset: esp.offset, size: esp.size, flags: LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR, blockSize: 0 });
  st.openFds.push(l.fd);
  log.info("ESP at " + esp.disk + " bytes " + esp.offset + "+" + esp.size + " (found by " + esp.how + "; the kernel made no partition node) on " + l.path);
  return l.path;
}

/** Attaches a DDI partition read-only; the loop device disappears with its last user. */
function attachPartition(k: Kernel, file: string, offset: number, size: number): LoopDevice {
  return attachLoop(k, file, { offset, size, flags: LoopFlags.READ_ONLY | LoopFlags.AUTOCLEAR | LoopFlags.DIRECT_IO, blockSize: 0 });
}

/** Sets up the root device (dm-verity over two loops, or one loop when verity is disabled). */
function setUpRoot(k: Kernel, log: Log, config: Config, loader: ModuleLoader, ddiFile: string, ddi: DdiLayout, st: BootState): string {
  loader.loadGroup("loop");
  const rootLoop = attachPartition(k, ddiFile, ddi.root.offset, ddi.root.size);
  log.debug("root partition " + ddi.root.partGuid + " on " + rootLoop.path);
  st.openFds.push(rootLoop.fd);
  if (ddi.verity === undefined) {
    log.warn("systemd.verity=0: mounting the root WITHOUT verification");
    return rootLoop.path;
  }
  st.phase = "set up dm-verity";
  const verityOffset = ddi.verity.offset;
  const sb = parseVeritySuperblock(withReader(k, ddiFile, (read) => read(verityOffset, VERITY_SUPERBLOCK_SIZE)));
  const rootHash = config.rootHash as string;
  const hashStart = checkVerityGeometry(sb, ddi.root.size, ddi.verity.size, rootHash);
  const verityLoop = attachPartition(k, ddiFile, ddi.verity.offset, ddi.verity.size);
  st.openFds.push(verityLoop.fd);
  loader.loadGroup("verity");
  const params = verityParams(rootLoop.major + ":" + rootLoop.minor, verityLoop.major + ":" + verityLoop.minor, sb, hashStart, rootHash, config.verityOptions);
  log.debug("verity table: " + params);
  const dev = createVerityDevice(k, VERITY_NAME, (sb.dataBlocks * sb.dataBlockSize) / 512, params);
  log.info("dm-verity " + dev.path + " (" + sb.algorithm + ", " + sb.dataBlocks + " blocks of " + sb.dataBlockSize + ") over " + rootLoop.path + " + " + verityLoop.path);
  return dev.path;
}

export function boot(k: Kernel, log: Log): never {
  const st: BootState = { phase: "mount API file systems", config: defaultConfig(), openFds: [] };
  try {
    mountApiFilesystems(k);
    log.openKmsg();
    const devkmsg = setDevkmsg(k, "on");
    const times = new Timings(k, log);
    times.begin("cmdline");
    st.phase = "read the kernel command line";
    const cmdline = readSmallFile(k, "/proc/cmdline", 65536).trim();
    const config = parseCmdline(cmdline);
    st.config = config;
    log.debugEnabled = config.debug;
    log.notice("version " + VERSION + ", pid " + k.getpid() + ", kernel command line: " + cmdline);
    if (config.problems.length > 0) throw new Error("kernel command line: " + config.problems.join("; "));
    if (config.rootHash === undefined && !config.verityDisabled) {
      throw new Error("no roothash= on the kernel command line: refusing to boot an unverified root (systemd.verity=0 allows it)");
    }

    times.begin("coldplug");
    st.phase = "find the ESP";
    const loader = ModuleLoader.open(k, log);
    const cold = new Coldplug(k, log, loader);
    const sel = espSelector(k, log, config, loader);
    const esp = waitForEsp(k, log, config, cold, sel);
    times.begin("esp");
    const espDev = espDevice(k, log, loader, esp, st);
    st.phase = "mount the ESP " + espDev;
    loader.loadGroup("vfat");
    mkdirAll(k, ESP_MOUNT, 0o755);
    k.mount(espDev, ESP_MOUNT, "vfat", MountFlags.RDONLY | MountFlags.NODEV | MountFlags.NOSUID | MountFlags.NOEXEC, "");
    // The mount holds the ESP's loop device now, if it needed one.
    for (const fd of st.openFds) k.close(fd);
    st.openFds = [];

    times.begin("ddi");
    st.phase = "open the DDI " + config.ddiPath + " on " + espDev;
    const ddiFile = ESP_MOUNT + config.ddiPath;
    const ddi = selectDdiPartitions(readDdi(k, ddiFile), ARCH, config.rootHash, config.verityDisabled);

    times.begin("verity");
    st.phase = "attach the DDI";
    const rootDev = setUpRoot(k, log, config, loader, ddiFile, ddi, st);
    // The loop devices hold the image open; the ESP mount itself is no longer needed.
    k.umount(ESP_MOUNT, AtFlags.MNT_DETACH);

    times.begin("mount");
    st.phase = "mount the root " + rootDev;
    loader.loadGroup("erofs");
    mkdirAll(k, SYSROOT, 0o755);
    try {
      k.mount(rootDev, SYSROOT, config.rootFsType, MountFlags.RDONLY, config.rootFlags);
    } catch (e) {
      if (ddi.verity !== undefined && isErrno(e, Errno.EIO) && verityStatus(k, VERITY_NAME) === "C") {
        throw new Error(errorText(e) + ": dm-verity found blocks that do not match roothash= (the image is corrupted or was tampered with)");
      }
      throw e;
    }
    log.info("mounted " + rootDev + " (" + config.rootFsType + ") on " + SYSROOT);
    // The mount (through dm-verity) now holds the loop devices.
    for (const fd of st.openFds) k.close(fd);
    st.openFds = [];

    times.begin("switch-root");
    st.phase = "switch root";
    const argvExtra = k.argv().slice(1);
    const envp = k.environ();
    times.write();
    log.info(times.summary());
    // Hand the system the rate limit it had.
    if (devkmsg !== undefined) setDevkmsg(k, devkmsg);
    switchRoot(k, log, SYSROOT);
    const init = chooseInit(k, config.init);
    if (init.path === undefined) throw new Error("no init in the new root (tried " + init.tried.join(", ") + ")");
    st.phase = "execute " + init.path;
    const t = times.phases;
    log.notice("starting " + init.path + " after " + formatMs(t[t.length - 1].endMs - times.startMs) + " ms");
    return k.execve(init.path, initArgv(init.path, argvExtra), envp);
  } catch (e) {
    log.fatal("failed to " + st.phase + ": " + errorText(e));
    return finalAction(k, log, st.config.onFailure, st.config.failureDelayMs);
  }
}
