// toolchain/module_closure.ts: depmod's files to the table the init reads.
import test from "ava";
import { loadOrder, matchModalias, parseModuleTable } from "../../runtime/module_table.js";
import {
  buildModuleTable,
  hardwareModules,
  isDeviceAlias,
  MODULE_GROUPS,
  parseKernelModules,
  resolveModule,
} from "../../toolchain/module_closure.js";
import { cachedKernel } from "../../qemu/kernel.mjs";
import { readKernelModules } from "../../toolchain/init_image.mjs";
import { testIfBuilt } from "../helpers.js";

const KERNEL_MODULES = cachedKernel()?.modulesDir ?? "(the fetched Debian kernel)";

const DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-mod.ko:
`;
const ALIAS = `alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias block-major-254-* virtio_blk
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias fs-erofs erofs
`;
const SOFTDEP = "softdep libcrc32c pre: crc32c\n";

test("isDeviceAlias() drops aliases no device modalias can match", (t) => {
  t.false(isDeviceAlias("block-major-8-*"));
  t.false(isDeviceAlias("fs-vfat"));
  t.true(isDeviceAlias("pci:v*d*sv*sd*bc01sc08i02*"));
});

test("buildModuleTable() writes the closure in load order, softdeps first, and device aliases only", (t) => {
  const idx = parseKernelModules(DEP, ALIAS, "kernel/drivers/virtio/virtio_ring.ko\n", SOFTDEP);
  const r = buildModuleTable(
    idx,
    ["virtio_pci", "virtio_blk", "nvme"],
    [
      { group: "erofs", names: ["erofs"] },
      { group: "verity", names: ["dm_verity"] },
    ],
    "6.1.0-1-amd64",
  );
  t.deepEqual(r.missing, ["nvme"]);
  t.is(
    r.text,
    [
      "storage-init-modules 2 6.1.0-1-amd64",
      "m virtio virtio.ko -",
      "m virtio_pci virtio_pci.ko virtio",
      "m virtio_blk virtio_blk.ko virtio",
      "m crc32c_generic crc32c_generic.ko -",
      "m libcrc32c libcrc32c.ko crc32c_generic",
      "m erofs erofs.ko crc32c_generic,libcrc32c",
      "m dm_mod dm-mod.ko -",
      "m dm_verity dm-verity.ko dm_mod",
      "a virtio_pci pci:v00001AF4d*sv*sd*bc*sc*i*",
      "a virtio_blk virtio:d00000002v*",
      "g erofs erofs",
      "g verity dm_verity",
      "",
    ].join("\n"),
  );
  t.deepEqual(
    r.files.map((f) => f.file),
    [
      "virtio.ko",
      "virtio_pci.ko",
      "virtio_blk.ko",
      "crc32c_generic.ko",
      "libcrc32c.ko",
      "erofs.ko",
      "dm-mod.ko",
      "dm-verity.ko",
    ],
  );
  const table = parseModuleTable(r.text);
  t.deepEqual(matchModalias("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", table), ["virtio_pci"]);
  t.deepEqual(matchModalias("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", table), []);
  t.deepEqual(
    loadOrder("erofs", table, new Set()).map((m) => m.name),
    ["crc32c_generic", "libcrc32c", "erofs"],
  );
  t.deepEqual(
    loadOrder("erofs", table, new Set(["crc32c_generic"])).map((m) => m.name),
    ["libcrc32c", "erofs"],
  );
});

testIfBuilt(KERNEL_MODULES, "node build.mjs tests")(
  "buildModuleTable() for Debian's kernel maps QEMU's storage devices to their drivers",
  (t) => {
    const idx = readKernelModules(KERNEL_MODULES);
    const r = buildModuleTable(
      idx,
      ["virtio_pci", "virtio_blk", "virtio_scsi", "nvme", "ahci", "sd_mod"],
      MODULE_GROUPS,
      "6.1.0",
    );
    t.deepEqual(r.missing, []);
    const table = parseModuleTable(r.text);
    t.deepEqual(matchModalias("pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", table), ["nvme"]);
    t.deepEqual(matchModalias("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", table), ["ahci"]);
    t.deepEqual(matchModalias("virtio:d00000008v00001AF4", table), ["virtio_scsi"]);
    t.deepEqual(matchModalias("scsi:t-0x00", table), ["sd_mod"]);
    t.deepEqual(
      loadOrder("nvme", table, new Set())
        .map((m) => m.name)
        .slice(-2),
      ["nvme_core", "nvme"],
    );
    // Debian builds sha256 and sha1 in, sha512 as a module: only that one is in the table.
    t.deepEqual(table.groups.get("hash-sha512"), ["sha512_generic"]);
    t.is(table.groups.get("hash-sha256"), undefined);
    t.is(table.groups.get("hash-sha1"), undefined);
  },
);

test("resolveModule() takes a name, a built-in module's alias, or a loadable one's, the generic first", (t) => {
  const idx = parseKernelModules(
    "kernel/crypto/sha512_generic.ko:\nkernel/arch/x86/crypto/sha512-ssse3.ko:\n",
    "alias crypto-sha512 sha512_ssse3\nalias crypto-sha512 sha512_generic\nalias crypto-sha384 sha512_generic\n",
    "kernel/crypto/sha256_generic.ko\n",
    "",
    "sha256_generic.alias=crypto-sha256\0sha256_generic.alias=sha256\0sha256_generic.license=GPL\0",
  );
  t.is(resolveModule(idx, "sha512_ssse3"), "sha512_ssse3");
  t.is(resolveModule(idx, "crypto-sha512"), "sha512_generic");
  t.is(resolveModule(idx, "crypto-sha256"), "sha256_generic", "built in");
  t.is(resolveModule(idx, "crypto-md4"), undefined);
  const r = buildModuleTable(
    idx,
    [],
    [
      { group: "hash-sha256", names: ["crypto-sha256"] },
      { group: "hash-sha512", names: ["crypto-sha512"] },
      { group: "hash-sha1", names: ["crypto-sha1"] },
    ],
    "6.1.0",
  );
  t.deepEqual(r.missing, ["crypto-sha1"]);
  t.regex(r.text, /^g hash-sha512 sha512_generic$/m);
  t.notRegex(r.text, /hash-sha256/);
});

test("hardwareModules() takes storage classes, or all, and names an unknown one", (t) => {
  t.deepEqual(hardwareModules(["nvme", "virtio"]), ["nvme", "virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod"]);
  t.true(hardwareModules(["all"]).includes("usb_storage"));
  t.throws(() => hardwareModules(["floppy"]), {
    message: /^unknown storage class floppy for x86-64; known: virtio, nvme, sata, usb, mmc, all$/,
  });
});

test("hardwareModules() for arm64 adds virtio over MMIO, the SoCs' SD/MMC and USB hosts, and UFS", (t) => {
  const virtio = hardwareModules(["virtio"], "arm64");
  t.deepEqual(virtio, ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "virtio_mmio"]);
  t.true(hardwareModules(["mmc"], "arm64").includes("sdhci_of_arasan"));
  t.true(hardwareModules(["usb"], "arm64").includes("xhci_plat_hcd"));
  t.true(hardwareModules(["ufs"], "arm64").includes("ufshcd_pltfrm"));
  t.true(hardwareModules(["all"], "arm64").includes("ufs_qcom"));
  t.throws(() => hardwareModules(["ufs"]), { message: /^unknown storage class ufs for x86-64/ });
});
