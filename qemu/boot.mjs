// Boots a kernel + initramfs under QEMU (TCG: no KVM here) with the serial console captured.
import { spawn } from "node:child_process";

/**
 * Options: arch ("x86-64", the default: q35; "arm64": virt), kernel, initrd, append (kernel command line), or instead firmware ({ code, vars }:
 * UEFI pflash images, vars a writable copy; secureBoot adds the SMM that OVMF's Secure Boot
 * build needs) to boot the disks as a machine would; stopOn (a RegExp: QEMU is stopped after the
 * first console line it matches); drives ([{ file, if: "virtio"|"nvme"|
 * "scsi"|"ahci", format?, readonly? (default true) }]), timeoutMs, memory (MiB), extraArgs, onLine(line).
 * Resolves with { output, lines, code, timedOut, ms } once QEMU exits or the time limit passes
 * (QEMU is then killed). -no-reboot turns a guest reboot into a QEMU exit.
 */
export function bootQemu(opts) {
  const arm = opts.arch === "arm64";
  const args = [
    "-machine",
    arm ? "virt" : "q35",
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
    "-serial",
    "stdio",
    "-no-reboot",
  ];
  if (opts.firmware) {
    if (opts.firmware.secureBoot)
      args.splice(1, 1, "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on");
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
      `console=${arm ? "ttyAMA0" : "ttyS0"} panic=-1 ${opts.append ?? ""}`.trim(),
    );
  let n = 0;
  for (const d of opts.drives ?? []) {
    const id = `d${n++}`;
    // Read-only by default: the init never writes, and tests share one image between QEMUs.
    // IDE/AHCI disks and SD cards cannot be read-only in QEMU: those get a throw-away overlay instead.
    const ro = d.readonly === false ? "" : d.if === "ahci" || d.if === "sd" ? ",snapshot=on" : ",read-only=on";
    args.push("-drive", `if=none,id=${id},file=${d.file},format=${d.format ?? "raw"}${ro}`);
    if (d.if === "virtio") args.push("-device", `virtio-blk-pci,drive=${id}`);
    else if (d.if === "nvme") args.push("-device", `nvme,drive=${id},serial=si${id}`);
    else if (d.if === "scsi")
      args.push("-device", "virtio-scsi-pci,id=scsi0", "-device", `scsi-hd,drive=${id},bus=scsi0.0`);
    else if (d.if === "ahci") args.push("-device", `ide-hd,drive=${id},bus=ide.0`);
    // arm64 virt: virtio over MMIO (device tree), an SD card behind sdhci, a USB stick behind xhci.
    else if (d.if === "virtio-mmio") args.push("-device", `virtio-blk-device,drive=${id}`);
    else if (d.if === "sd") args.push("-device", "sdhci-pci", "-device", `sd-card,drive=${id}`);
    else if (d.if === "usb") args.push("-device", "qemu-xhci", "-device", `usb-storage,drive=${id}`);
    else throw new Error(`unknown drive interface ${d.if}`);
  }
  args.push(...(opts.extraArgs ?? []));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const qemu = arm ? "qemu-system-aarch64" : "qemu-system-x86_64";
    const p = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let pending = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill("SIGKILL");
    }, opts.timeoutMs ?? 120000);
    const onData = (chunk) => {
      const s = chunk.toString("utf8").replace(/\r/g, "");
      output += s;
      pending += s;
      const parts = pending.split("\n");
      pending = parts.pop();
      for (const l of parts) {
        opts.onLine?.(l);
        // A boot that can only wait from here (the firmware refused the loader): done.
        if (opts.stopOn?.test(l)) p.kill("SIGKILL");
      }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("error", (/** @type {NodeJS.ErrnoException} */ e) => {
      clearTimeout(timer);
      reject(
        e.code === "ENOENT"
          ? new Error(
              `${qemu} not found: install it with 'apt-get install ${arm ? "qemu-system-arm" : "qemu-system-x86"}'`,
            )
          : e,
      );
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      if (pending) opts.onLine?.(pending);
      resolve({ output, lines: output.split("\n"), code, timedOut, ms: performance.now() - t0 });
    });
  });
}
