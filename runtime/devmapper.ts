/**
 * The device-mapper transport: struct dm_ioctl encoded and decoded (uapi linux/dm-ioctl.h,
 * interface version 4), one call per verb over /dev/mapper/control, and the create / load
 * (read-only) / resume / status sequence of a read-only device. Knows nothing of dm-verity;
 * runtime/root_device.ts loads a verity table through it.
 */
import { putU32le, putU64le, readCString, u32le } from "../lib/bytes.js";
import { InitError } from "../lib/errors.js";
import { quote } from "../lib/quote.js";
import { KernelError } from "../syscalls/errno.js";
import { closeQuietly } from "../syscalls/files.js";
import { OpenFlags } from "../syscalls/kernel.js";
import type { Kernel } from "../syscalls/kernel.js";

export const DmIoctl = {
  VERSION: 0xc138fd00,
  DEV_CREATE: 0xc138fd03,
  DEV_REMOVE: 0xc138fd04,
  DEV_SUSPEND: 0xc138fd06,
  TABLE_LOAD: 0xc138fd09,
  TABLE_STATUS: 0xc138fd0c,
};
/** dm_ioctl flags: DM_READONLY_FLAG; DM_DEFERRED_REMOVE (remove when the last opener closes it). */
export const DmFlags = { READONLY: 1, DEFERRED_REMOVE: 1 << 17 };
export const DM_IOCTL_SIZE = 312;

/** Offsets in struct dm_ioctl. */
const DmField = {
  VERSION: 0,
  DATA_SIZE: 12,
  DATA_START: 16,
  TARGET_COUNT: 20,
  FLAGS: 28,
  DEV: 40,
  NAME: 48,
  UUID: 176,
};
/** struct dm_target_spec: sector_start, length, status, next, target_type[16]; then the params. */
const DmTargetField = { START: 0, LENGTH: 8, NEXT: 20, TYPE: 24, PARAMS: 40 };
const DM_TARGET_SPEC_SIZE = 40;
const DM_NAME_LEN = 128;
const DM_UUID_LEN = 129;
const DM_TYPE_LEN = 16;
/** Room for the kernel's answer to a status request. */
const STATUS_RESERVE = 1024;

export interface DmTarget {
  start: number;
  length: number;
  type: string;
  params: string;
}

export interface DmRequest {
  name: string;
  uuid: string;
  flags: number;
  targets: DmTarget[];
  /** Extra room for the kernel's answer (status strings). */
  reserve: number;
}

function putString(b: Uint8Array, o: number, s: string, max: number): void {
  if (s.length >= max) throw new InitError("device-mapper field too long: " + s.slice(0, 40));
  for (let i = 0; i < s.length; i++) b[o + i] = s.charCodeAt(i) & 0xff;
}

/** struct dm_ioctl (version 4.0.0) followed by the target specs, each padded to 8 bytes. */
export function encodeDmIoctl(r: DmRequest): Uint8Array {
  let size = DM_IOCTL_SIZE;
  for (const t of r.targets) size += DM_TARGET_SPEC_SIZE + ((t.params.length + 1 + 7) & ~7);
  size += r.reserve;
  const b = new Uint8Array(size);
  putU32le(b, DmField.VERSION, 4);
  putU32le(b, DmField.VERSION + 4, 0);
  putU32le(b, DmField.VERSION + 8, 0);
  putU32le(b, DmField.DATA_SIZE, size);
  putU32le(b, DmField.DATA_START, DM_IOCTL_SIZE);
  putU32le(b, DmField.TARGET_COUNT, r.targets.length);
  putU32le(b, DmField.FLAGS, r.flags);
  putString(b, DmField.NAME, r.name, DM_NAME_LEN);
  putString(b, DmField.UUID, r.uuid, DM_UUID_LEN);
  let o = DM_IOCTL_SIZE;
  for (let i = 0; i < r.targets.length; i++) {
    const t = r.targets[i];
    const len = DM_TARGET_SPEC_SIZE + ((t.params.length + 1 + 7) & ~7);
    putU64le(b, o + DmTargetField.START, t.start);
    putU64le(b, o + DmTargetField.LENGTH, t.length);
    putU32le(b, o + DmTargetField.NEXT, i + 1 < r.targets.length ? len : 0);
    putString(b, o + DmTargetField.TYPE, t.type, DM_TYPE_LEN);
    putString(b, o + DmTargetField.PARAMS, t.params, len - DM_TARGET_SPEC_SIZE);
    o += len;
  }
  return b;
}

export interface DmReply {
  version: number[];
  flags: number;
  major: number;
  minor: number;
  dataStart: number;
  dataSize: number;
  targetCount: number;
}

/** The fields of a struct dm_ioctl the kernel filled in (new_encode_dev for the device number). */
export function decodeDmReply(b: Uint8Array): DmReply {
  // The kernel encodes dev_t in the low 32 bits (huge_encode_dev); the whole u64 as a number would
  // lose those bits to rounding should the high ones be set.
  const lo = u32le(b, DmField.DEV);
  return {
    version: [u32le(b, DmField.VERSION), u32le(b, DmField.VERSION + 4), u32le(b, DmField.VERSION + 8)],
    dataSize: u32le(b, DmField.DATA_SIZE),
    dataStart: u32le(b, DmField.DATA_START),
    targetCount: u32le(b, DmField.TARGET_COUNT),
    flags: u32le(b, DmField.FLAGS),
    major: (lo >>> 8) & 0xfff,
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00),
  };
}

/** The status text of the first target in a TABLE_STATUS reply ("V" verified, "C" corrupted). */
export function dmStatusText(b: Uint8Array): string {
  const r = decodeDmReply(b);
  // porffor: typedarray-bounds
  if (r.targetCount < 1 || r.dataStart + DM_TARGET_SPEC_SIZE > b.length) return "";
  return readCString(b, r.dataStart + DM_TARGET_SPEC_SIZE, Math.min(b.length, r.dataSize));
}

/** A request that names device `name` and carries nothing else. */
function nameOnly(name: string, reserve: number): DmRequest {
  return { name, uuid: "", flags: 0, targets: [], reserve };
}

/**
 * One device-mapper verb on /dev/mapper/control (`ctl`): `request` is a DmIoctl, `what` names
 * the verb in a failure. Returns the buffer with the kernel's reply.
 */
export function dmCall(k: Kernel, ctl: number, request: number, what: string, r: DmRequest): Uint8Array {
  const b = encodeDmIoctl(r);
  try {
    k.ioctl(ctl, request, b);
  } catch (e) {
    if (e instanceof KernelError) throw new KernelError("device-mapper " + what, quote(r.name), e.errno);
    throw e;
  }
  return b;
}

/** The status of dm device `name`, or "" when it cannot be read (used to explain a failure). */
export function dmStatus(k: Kernel, name: string): string {
  try {
    const ctl = k.open("/dev/mapper/control", OpenFlags.RDWR);
    try {
      const s = dmStatusText(dmCall(k, ctl, DmIoctl.TABLE_STATUS, "status", nameOnly(name, STATUS_RESERVE)));
      k.close(ctl);
      return s;
    } catch (e) {
      closeQuietly(k, [ctl]);
      return "";
    }
  } catch (e) {
    return "";
  }
}

/**
 * Removes device `name`; with DmFlags.DEFERRED_REMOVE in `flags`, once it is no longer open (as
 * systemd's dissect and libmount do after mounting: the device goes when its file system is
 * unmounted).
 */
export function removeDevice(k: Kernel, name: string, flags: number): void {
  const ctl = k.open("/dev/mapper/control", OpenFlags.RDWR);
  try {
    dmCall(k, ctl, DmIoctl.DEV_REMOVE, "remove", { name, uuid: "", flags, targets: [], reserve: 0 });
  } catch (e) {
    closeQuietly(k, [ctl]);
    throw e;
  }
  k.close(ctl);
}

/**
 * Removes device `name`, quietly: used on a path that is already failing, so that another
 * device of that name can be made; a leftover device does no harm before a reboot.
 */
export function removeDeviceQuietly(k: Kernel, name: string): void {
  try {
    removeDevice(k, name, 0);
  } catch (e) {
    // See above: already failing.
  }
}

export interface DmDevice {
  name: string;
  path: string;
  major: number;
  minor: number;
}

/**
 * Creates the read-only device `name` with one target: create, load (read-only), resume; the
 * target's status must then be `expect.status`. Removes the half-made device on failure.
 */
export function createReadOnlyDevice(
  k: Kernel,
  name: string,
  uuid: string,
  target: DmTarget,
  expect: { status: string; meaning: string },
): DmDevice {
  const ctl = k.open("/dev/mapper/control", OpenFlags.RDWR);
  // porffor: try-catch-stale-locals
  const made = { created: false };
  try {
    const v = decodeDmReply(dmCall(k, ctl, DmIoctl.VERSION, "version", nameOnly("", 0))).version;
    if (v[0] !== 4) throw new InitError("device-mapper interface " + v.join(".") + " is not version 4");
    const created = decodeDmReply(
      dmCall(k, ctl, DmIoctl.DEV_CREATE, "create", { name, uuid, flags: 0, targets: [], reserve: 0 }),
    );
    made.created = true;
    dmCall(k, ctl, DmIoctl.TABLE_LOAD, "load table", {
      name,
      uuid: "",
      flags: DmFlags.READONLY,
      targets: [target],
      reserve: 0,
    });
    // DM_DEV_SUSPEND without the suspend flag: the loaded table goes live.
    dmCall(k, ctl, DmIoctl.DEV_SUSPEND, "resume", nameOnly(name, 0));
    const status = dmStatusText(dmCall(k, ctl, DmIoctl.TABLE_STATUS, "status", nameOnly(name, STATUS_RESERVE)));
    if (status !== expect.status) {
      throw new InitError(
        "dm-" +
          target.type +
          " device " +
          name +
          " reports status " +
          quote(status) +
          " instead of " +
          expect.status +
          " (" +
          expect.meaning +
          ")",
      );
    }
    k.close(ctl);
    return { name, path: "/dev/dm-" + created.minor, major: created.major, minor: created.minor };
  } catch (e) {
    if (made.created) {
      try {
        dmCall(k, ctl, DmIoctl.DEV_REMOVE, "remove", nameOnly(name, 0));
      } catch (e2) {
        // The original failure is the one to report; a leftover device does no harm before reboot.
      }
    }
    closeQuietly(k, [ctl]);
    throw e;
  }
}
