// mkosi's image (qemu/mkosi/, built by qemu/mkosi_image.ts): the DDI and the UKI it built, put
// on an ESP as the README tells a mkosi user, booted under OVMF through storage-init into the
// image's systemd.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DIST, WORK } from "../toolchain/tools.mjs";
import { initramfsPath } from "../toolchain/init_image.mjs";
import { peSections, readSection } from "../toolchain/uki.mjs";
import { bootQemu } from "../qemu/boot.js";
import { buildEspDisk } from "../qemu/images.js";
import { buildMkosiImage } from "../qemu/mkosi_image.js";
import { espFiles, firmware } from "../qemu/uefi.mjs";
import { isProtoInitrd, testIfBuilt } from "./helpers.js";
import { noPanic } from "./scenario.js";

const ESP_PART_UUID = "de5de5de-0000-4000-8000-00000000de5c";

testIfBuilt(initramfsPath(DIST, "x86-64", ["all"]), "node build.mjs tests")(
  "mkosi: a Debian 13 DDI and a UKI with Initrds= storage-init, booted from the ESP under OVMF into the image's systemd",
  async (t) => {
    const m = await buildMkosiImage();
    // The UKI: mkosi's roothash= for the DDI, our initrd and no other (KernelModulesInitrd=no).
    const cmdline = readSection(m.uki, ".cmdline").toString();
    t.regex(cmdline, new RegExp(`roothash=${m.rootHash}`));
    t.regex(cmdline, /storage_init\.ddi=\/EFI\/storage-init\/root\.raw/);
    t.deepEqual(readSection(m.uki, ".initrd"), readFileSync(m.initrd), "the .initrd is the proto-initrd alone");
    isProtoInitrd(t, readFileSync(m.initrd), join(DIST, "storage-init"));
    t.false(peSections(m.uki).some((s: { name: string }) => s.name === ".pcrsig"));

    const dir = join(WORK, "mkosi-boot");
    mkdirSync(dir, { recursive: true });
    const files = espFiles(dir, {
      uki: m.uki,
      bootloader: undefined,
      shim: undefined,
      ddi: m.ddi,
      ddiPath: "/EFI/storage-init/root.raw",
    });
    const disk = buildEspDisk(join(dir, "disk.img"), files, { espPartUuid: ESP_PART_UUID });
    const r = await bootQemu({
      firmware: firmware(dir),
      drives: [{ file: disk, if: "virtio", readonly: true }],
      memory: 1024,
      timeoutMs: 300000,
    });
    noPanic(t, r);
    t.regex(r.output, /Linux version 6\.12\./);
    t.regex(r.output, /storage-init: ESP \/dev\/vda1 \(found by LoaderDevicePartUUID\)/);
    t.regex(r.output, /storage-init: dm-verity \/dev\/dm-0 \(sha256, \d+ blocks of 4096\)/);
    t.regex(r.output, /storage-init: starting \/usr\/lib\/systemd\/systemd after \d+\.\d+ ms/);
    t.regex(r.output, /systemd\[1\]: systemd 257/);
    t.regex(r.output, /ROOT-REACHED uptime=[\d.]+ init=\/usr\/lib\/systemd\/systemd/, r.output.slice(-3000));
  },
);
