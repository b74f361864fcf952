// Boots a kernel + initramfs, or UEFI firmware and the disks, under QEMU (TCG: no KVM here) with
// the serial console captured. The machine, its console and QEMU's program are the
// architecture's (toolchain/arches.ts); the drives attach through the interfaces of INTERFACES.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import { createConnection } from "node:net";
import type { AddressInfo } from "node:net";
import { basename, dirname, join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { ARCHES } from "../toolchain/arches.ts";
import type { Arch } from "../toolchain/arches.ts";
import { WORK } from "../toolchain/tools.mjs";

/** How a drive interface attaches drive `id`, the `n`th drive on it. */
interface DriveInterfaceFacts {
  /** The -device arguments of the drive (a controller of its own first, where it needs one). */
  devices: (id: string, n: number) => string[];
  /** A controller the drives on this interface share: added once, before the first. */
  shared?: string;
  /** False where QEMU cannot open the image read-only: the drive gets a throw-away overlay instead. */
  readOnly?: false;
  /** The device takes only images whose size is a power of two. */
  powerOfTwo?: true;
}

/**
 * The drive interfaces: virtio-blk, NVMe, a virtio-scsi disk (or LUN n of target 0, for many
 * disks on one controller), an IDE disk on q35's AHCI controller; and for arm64's virt, virtio
 * over MMIO (device tree), an SD card behind sdhci, a USB stick behind xhci.
 */
export type DriveInterface = "virtio" | "nvme" | "scsi" | "scsi-lun" | "ahci" | "virtio-mmio" | "sd" | "usb";

export const INTERFACES: Record<DriveInterface, DriveInterfaceFacts> = {
  virtio: { devices: (id) => [`virtio-blk-pci,drive=${id}`] },
  nvme: { devices: (id) => [`nvme,drive=${id},serial=si${id}`] },
  scsi: { shared: "virtio-scsi-pci,id=scsi0", devices: (id) => [`scsi-hd,drive=${id},bus=scsi0.0`] },
  "scsi-lun": {
    shared: "virtio-scsi-pci,id=scsi0",
    devices: (id, n) => [`scsi-hd,drive=${id},bus=scsi0.0,channel=0,scsi-id=0,lun=${n}`],
  },
  ahci: { devices: (id) => [`ide-hd,drive=${id},bus=ide.0`], readOnly: false },
  "virtio-mmio": { devices: (id) => [`virtio-blk-device,drive=${id}`] },
  sd: { devices: (id) => ["sdhci-pci", `sd-card,drive=${id}`], readOnly: false, powerOfTwo: true },
  usb: { devices: (id) => ["qemu-xhci", `usb-storage,drive=${id}`] },
};

/** Whether images on `iface` must be a power of two in size (QEMU's SD cards). */
export function needsPowerOfTwo(iface: DriveInterface): boolean {
  return INTERFACES[iface].powerOfTwo === true;
}

export interface Drive {
  file: string;
  if: DriveInterface;
  /** QEMU's image format; raw by default. */
  format?: string;
  /**
   * Read-only unless false: the init never writes, and tests share one image between QEMUs.
   * "snapshot": writable for the machine, its writes kept in a throw-away overlay (a root
   * file system the booted system mounts read-write).
   */
  readonly?: boolean | "snapshot";
  /**
   * Attached while the machine runs, `delayMs` after the first console line `after` matches,
   * through the QEMU monitor into a PCIe root port of its own (virtio only).
   */
  plug?: { after: RegExp; delayMs: number };
}

/** UEFI pflash images: `vars` a writable copy; `secureBoot` asks for the machine its Secure Boot build needs. */
export interface Firmware {
  code: string;
  vars: string;
  secureBoot: boolean;
}

/** QEMU loads the kernel and initramfs itself, with `append` after consoleArgs(); or the firmware boots the disks as a machine would. */
export type BootMedia = { kernel: string; initrd: string; append?: string } | { firmware: Firmware };

export type BootOptions = BootMedia & {
  /** x86-64 (q35) by default. */
  arch?: Arch;
  drives?: Drive[];
  /** QEMU is stopped after the first console line this matches (a boot that can only wait from there). */
  stopOn?: RegExp;
  timeoutMs?: number;
  /** MiB; 512 by default. */
  memory?: number;
  extraArgs?: string[];
  onLine?: (line: string) => void;
  /** A monitor (HMP) command sent once a console line matches `after`; its reply is Boot.reply. */
  query?: { after: RegExp; command: string };
  /**
   * A TPM 2.0: swtpm, started for this boot with its state in this folder (kept: the seeds a
   * volume was sealed under), as the architecture's QEMU TPM device.
   */
  tpm?: string;
  /** A network card from which the firmware fetches a file (networkArgs()). */
  network?: Network;
};

/**
 * What the firmware fetches over the network: `file`, by TFTP from QEMU's built-in server, or
 * by HTTP from a server started for the boot on 127.0.0.1, sent as `contentType`
 * (application/efi unless given; edk2 makes a RAM disk of `application/vnd.efi-img`).
 */
export interface Network {
  file: string;
  by: "tftp" | "http";
  contentType?: string;
}

/** The address the guest reaches the HTTP server at (QEMU forwards it: guestfwd). */
export const HTTP_BOOT_HOST = "10.0.2.100";

/**
 * QEMU's arguments for `net`: a virtio-net card on QEMU's user network with restrict=on, where
 * the guest reaches nothing but QEMU's own DHCP and TFTP servers and, for HTTP, the server
 * started here, bound to 127.0.0.1, which the guest reaches at HTTP_BOOT_HOST:80 through one
 * forwarded connection (guestfwd to a chardev: HTTP keep-alive serves the firmware's HEAD and
 * GET on it). The card has no option ROM: the firmware's own virtio-net driver runs it. `close`
 * stops the server.
 */
async function networkArgs(net: Network): Promise<{ args: string[]; close: () => void }> {
  const card = ["-device", "virtio-net-pci,netdev=net0,romfile="];
  const name = basename(net.file);
  if (net.by === "tftp")
    return {
      args: [
        "-netdev",
        `user,id=net0,restrict=on,tftp=${dirname(net.file).replace(/,/g, ",,")},bootfile=${name}`,
        ...card,
      ],
      close: () => undefined,
    };
  const server = createServer((req, res) => {
    if (req.url !== `/${name}` || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404).end();
      return;
    }
    const size = statSync(net.file).size;
    res.writeHead(200, { "Content-Type": net.contentType ?? "application/efi", "Content-Length": size });
    if (req.method === "HEAD") res.end();
    else createReadStream(net.file).pipe(res);
  });
  // QEMU connects when it starts, and the firmware asks a minute later: no timeout closes it.
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    args: [
      "-netdev",
      `user,id=net0,restrict=on,bootfile=http://${HTTP_BOOT_HOST}/${name},guestfwd=tcp:${HTTP_BOOT_HOST}:80-tcp:127.0.0.1:${port}`,
      ...card,
    ],
    close: () => server.close(),
  };
}

export interface Boot {
  output: string;
  lines: string[];
  code: number | null;
  timedOut: boolean;
  ms: number;
  /** How many drives with `plug` were plugged. */
  plugged: number;
  /** The monitor's reply to BootOptions.query, where it was sent and answered. */
  reply?: string;
  /** When each console line arrived, in ms since QEMU started (the host's clock: the firmware's lines carry no time). */
  lineMs: number[];
}

/** The kernel command line every direct boot and UKI starts with: the serial console, and a panic ends the machine. */
export function consoleArgs(arch: Arch = "x86-64"): string {
  return `console=${ARCHES[arch].qemu.console} panic=-1`;
}

let monitors = 0;
let consoles = 0;

/**
 * The serial console, written by QEMU to a regular file and read back as it grows. Into a pipe,
 * QEMU's 16550 drops a byte it could not write after a few retries: a test worker busy for a
 * moment (an image being built) lost bytes from the middle of kernel lines.
 */
class ConsoleFile {
  readonly path = join(WORK, `console-${process.pid}-${consoles++}.log`);
  private readonly fd: number;
  private readonly decoder = new StringDecoder("utf8");
  private readonly buf = Buffer.alloc(65536);
  constructor() {
    mkdirSync(WORK, { recursive: true });
    writeFileSync(this.path, "");
    this.fd = openSync(this.path, "r");
  }
  /** What QEMU wrote since the last read. */
  read(): string {
    let s = "";
    for (let n; (n = readSync(this.fd, this.buf, 0, this.buf.length, null)) > 0;)
      s += this.decoder.write(this.buf.subarray(0, n));
    return s;
  }
  close(): string {
    const s = this.read() + this.decoder.end();
    closeSync(this.fd);
    rmSync(this.path, { force: true });
    return s;
  }
}

let tpms = 0;

/**
 * swtpm for one boot: a TPM 2.0 with its state in `state`, on a control socket QEMU connects to;
 * it ends when QEMU closes the connection. Resolves with the process and QEMU's arguments once
 * the socket is there.
 */
async function startTpm(arch: Arch, state: string): Promise<{ swtpm: ChildProcess; socket: string; args: string[] }> {
  const tpm = ARCHES[arch].qemu.tpm;
  if ("none" in tpm) throw new Error(`no TPM on ${arch}: ${tpm.none}`);
  mkdirSync(WORK, { recursive: true });
  const socket = join(WORK, `swtpm-${process.pid}-${tpms++}.sock`);
  rmSync(socket, { force: true });
  const args = [
    "socket",
    "--tpm2",
    "--tpmstate",
    `dir=${state}`,
    "--ctrl",
    `type=unixio,path=${socket}`,
    "--terminate",
  ];
  const swtpm = spawn("swtpm", args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  swtpm.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<never>((_, reject) => {
    swtpm.on("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ENOENT" ? new Error("swtpm not found: install it with 'apt-get install swtpm'") : e),
    );
    swtpm.on("exit", (code) => reject(new Error(`swtpm ${args.join(" ")} exited (${code}): ${err}`)));
  });
  const ready = (async () => {
    for (let i = 0; i < 500 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 10));
    if (!existsSync(socket)) throw new Error(`swtpm made no socket ${socket} in 5 s: ${err}`);
  })();
  exited.catch(() => undefined);
  try {
    await Promise.race([ready, exited]);
  } catch (e) {
    swtpm.kill();
    throw e;
  }
  return {
    swtpm,
    socket,
    args: [
      "-chardev",
      `socket,id=tpm,path=${socket}`,
      "-tpmdev",
      "emulator,id=tpm0,chardev=tpm",
      "-device",
      `${tpm.device},tpmdev=tpm0`,
    ],
  };
}

/**
 * Boots `opts` and resolves with the console output once QEMU exits or the time limit passes
 * (QEMU is then killed). -no-reboot turns a guest reboot into a QEMU exit.
 */
export async function bootQemu(opts: BootOptions): Promise<Boot> {
  const arch = ARCHES[opts.arch ?? "x86-64"];
  const args = [
    "-machine",
    arch.qemu.machine,
    "-accel",
    "tcg",
    "-cpu",
    "max",
    "-m",
    String(opts.memory ?? 512),
    "-smp",
    "1",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
  ];
  if ("firmware" in opts) {
    if (opts.firmware.secureBoot) {
      const sb = arch.uefi.secureBoot;
      if (sb === undefined) throw new Error(`no Secure Boot machine for ${opts.arch}`);
      args.splice(1, 1, sb.machine, ...sb.qemuArgs);
    }
    args.push(
      "-drive",
      `if=pflash,format=raw,unit=0,readonly=on,file=${opts.firmware.code}`,
      "-drive",
      `if=pflash,format=raw,unit=1,file=${opts.firmware.vars}`,
    );
  } else
    args.push(
      "-kernel",
      opts.kernel,
      "-initrd",
      opts.initrd,
      "-append",
      `${consoleArgs(opts.arch)} ${opts.append ?? ""}`.trim(),
    );
  const counts = new Map<DriveInterface, number>();
  const plugs: Plug[] = [];
  for (const [n, d] of (opts.drives ?? []).entries()) {
    const id = `d${n}`;
    const facts = INTERFACES[d.if];
    const ro =
      d.readonly === false
        ? ""
        : d.readonly === "snapshot" || facts.readOnly === false
          ? ",snapshot=on"
          : ",read-only=on";
    if (d.plug !== undefined) {
      if (d.if !== "virtio") throw new Error(`a drive plugged in later is virtio, not ${d.if}`);
      const port = `rp${plugs.length + 1}`;
      args.push("-device", `pcie-root-port,id=${port},slot=${plugs.length + 1},chassis=${plugs.length + 1}`);
      plugs.push({ drive: d, when: d.plug, id, port });
      continue;
    }
    args.push("-drive", `if=none,id=${id},file=${d.file},format=${d.format ?? "raw"}${ro}`);
    const k = counts.get(d.if) ?? 0;
    counts.set(d.if, k + 1);
    if (k === 0 && facts.shared !== undefined) args.push("-device", facts.shared);
    for (const device of facts.devices(id, k)) args.push("-device", device);
  }
  let monitor: string | undefined;
  if (plugs.length > 0 || opts.query !== undefined) {
    mkdirSync(WORK, { recursive: true });
    monitor = join(WORK, `qmp-${process.pid}-${monitors++}.sock`);
    args.push("-monitor", `unix:${monitor},server=on,wait=off`);
  }
  const tpm = opts.tpm === undefined ? undefined : await startTpm(opts.arch ?? "x86-64", opts.tpm);
  const network = opts.network === undefined ? undefined : await networkArgs(opts.network);
  const serial = new ConsoleFile();
  args.push("-chardev", `file,id=console,path=${serial.path.replace(/,/g, ",,")}`, "-serial", "chardev:console");
  args.push(...(tpm?.args ?? []), ...(network?.args ?? []), ...(opts.extraArgs ?? []));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(arch.qemu.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let pending = "";
    let timedOut = false;
    const plugged = new Set<number>();
    let asked: Promise<unknown> | undefined;
    let reply: string | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill("SIGKILL");
    }, opts.timeoutMs ?? 120000);
    const lineMs: number[] = [];
    const onLine = (l: string) => {
      lineMs.push(performance.now() - t0);
      opts.onLine?.(l);
      for (const [i, plug] of plugs.entries()) {
        if (plugged.has(i) || !plug.when.after.test(l)) continue;
        plugged.add(i);
        setTimeout(() => plugIn(monitor ?? "", plug), plug.when.delayMs);
      }
      if (opts.query !== undefined && asked === undefined && opts.query.after.test(l))
        asked = hmp(monitor ?? "", opts.query.command).then(
          (r) => (reply = r),
          () => undefined,
        );
      if (opts.stopOn?.test(l)) p.kill("SIGKILL");
    };
    const onData = (chunk: Buffer | string) => {
      const s = chunk.toString().replace(/\r/g, "");
      output += s;
      pending += s;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const l of parts) onLine(l);
    };
    const poll = setInterval(() => onData(serial.read()), 20);
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    // A program that cannot start emits "error", then "close": the error is what is reported.
    let failed: Error | undefined;
    p.on("error", (e: NodeJS.ErrnoException) => {
      failed =
        e.code === "ENOENT"
          ? new Error(`${arch.qemu.binary} not found: install it with 'apt-get install ${arch.qemu.package}'`)
          : e;
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      clearInterval(poll);
      onData(serial.close());
      if (pending) opts.onLine?.(pending);
      for (const f of [monitor, tpm?.socket]) if (f !== undefined) rmSync(f, { force: true });
      network?.close();
      const ms = performance.now() - t0;
      const done = () =>
        void Promise.resolve(asked).then(() =>
          failed !== undefined
            ? reject(failed)
            : resolve({
                output,
                lines: output.split("\n"),
                code,
                timedOut,
                ms,
                plugged: plugged.size,
                reply,
                lineMs,
              }),
        );
      // The TPM's state is whole once swtpm has ended: --terminate ends it when QEMU lets go of
      // its socket; a QEMU killed or never started may not have, so it is asked to end.
      if (tpm === undefined || tpm.swtpm.exitCode !== null || tpm.swtpm.signalCode !== null) return done();
      tpm.swtpm.once("exit", done);
      tpm.swtpm.kill();
    });
  });
}

/** A drive plugged in while the machine runs: its drive id and root port. */
interface Plug {
  drive: Drive;
  when: { after: RegExp; delayMs: number };
  id: string;
  port: string;
}

/**
 * The reply of QEMU's monitor at `socket` to `command`: what it prints before its next prompt.
 * Rejects when the monitor goes away first (QEMU ended) or gives no reply within 5 s.
 */
function hmp(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const mon = createConnection(socket);
    let text = "";
    let sent = false;
    let settled = false;
    const settle = (error: Error | undefined, reply = "") => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      mon.destroy();
      if (error === undefined) resolve(reply);
      else reject(error);
    };
    const timer = setTimeout(() => settle(new Error(`no reply to ${command} in 5 s`)), 5000);
    mon.on("error", (e) => settle(e));
    mon.on("close", () => settle(new Error(`the monitor closed before it replied to ${command}`)));
    mon.on("data", (d: Buffer) => {
      text += d.toString();
      if (!text.endsWith("(qemu) ")) return;
      if (!sent) {
        sent = true;
        text = "";
        mon.write(`${command}\n`);
        return;
      }
      // The monitor echoes the command (with terminal escapes) before its reply.
      const lines = text.replace(/\r/g, "").split("\n");
      settle(undefined, lines.slice(1, -1).join("\n"));
    });
  });
}

/** Adds the drive, then its device in its root port, through the QEMU monitor at `socket`. */
function plugIn(socket: string, { drive, id, port }: Plug): void {
  const mon = createConnection(socket);
  // The machine may be gone already: the boot's own assertions say what happened.
  mon.on("error", () => undefined);
  const ro = drive.readonly === false ? "" : drive.readonly === "snapshot" ? ",snapshot=on" : ",readonly=on";
  mon.write(`drive_add 0 if=none,id=${id},file=${drive.file},format=${drive.format ?? "raw"}${ro}\n`);
  setTimeout(() => mon.end(`device_add ${INTERFACES.virtio.devices(id, 0)[0]},bus=${port},id=${id}disk\n`), 500);
}
