/**
 * Facts shared by the init, its tests, the toolchain and the image builders in qemu/: one
 * definition each. Data, and pure functions of it.
 */

/** GPT partition type GUIDs (UEFI; UAPI Discoverable Partitions Specification). */
export const PartitionType = {
  ESP: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
  ROOT_X86_64: "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
  ROOT_VERITY_X86_64: "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
  ROOT_VERITY_SIG_X86_64: "41092b05-9fc8-4523-994f-2def0408b176",
  ROOT_ARM64: "b921b045-1df0-41c3-af44-4c6f280d3fae",
  ROOT_VERITY_ARM64: "df3300ce-d69f-4c92-978c-9bfb0f38d820",
  ROOT_VERITY_SIG_ARM64: "6db69de6-29f4-4758-a7a5-962190f00ce3",
  /** Generic Linux file system data: a partition that is neither an ESP nor part of a DDI. */
  LINUX_DATA: "0fc63daf-8483-4772-8e79-3d69d8477de4",
};

/** Where the DDI lies on the ESP unless `storage_init.ddi=` says otherwise. */
export const DEFAULT_DDI_PATH = "/EFI/storage-init/root.raw";

/** True when `path` names a vpick directory (`NAME.v` or `NAME.v/`). */
export function isVpickDir(path: string): boolean {
  return path.endsWith(".v") || path.endsWith(".v/");
}

/**
 * Where the initramfs carries DDIs in memory (in the UKI's `.initrd`, or in a second initrd a
 * boot loader adds): no ESP is needed for them.
 */
export const MEMORY_DDI_DIR = "/ddi";

/**
 * Where a DDI named `storage_init.ddi=PATH` on the ESP is looked for in memory, under
 * MEMORY_DDI_DIR: the path's last component, a vpick directory keeping its trailing slash
 * (`/EFI/storage-init/root.raw` is `/root.raw`, `/EFI/os/root.v/` is `/root.v/`).
 */
export function memoryDdiPath(path: string): string {
  const dir = path.endsWith("/");
  const bare = dir ? path.slice(0, path.length - 1) : path;
  return bare.slice(bare.lastIndexOf("/")) + (dir ? "/" : "");
}

/** The paths under MEMORY_DDI_DIR of the storage_init.ddi= paths `ddiPaths` (memoryDdiPath()), each once, in order. */
export function memoryDdiPaths(ddiPaths: string[]): string[] {
  const paths: string[] = [];
  for (const p of ddiPaths) {
    const m = memoryDdiPath(p);
    if (paths.indexOf(m) < 0) paths.push(m);
  }
  return paths;
}

/**
 * Where systemd-stub reads `*.raw` files from the ESP into memory before the kernel starts, to
 * hand them to the initrd as system extensions: beside the UKI in `<uki>.efi.extra.d/`, and
 * under `/loader/extensions/`. A DDI there would be read whole, and offered as an unverified
 * extension. Returns the place, or undefined. FAT names are compared without case.
 */
export function stubLoadsFrom(path: string): string | undefined {
  const p = path.toLowerCase();
  if (!p.endsWith(".raw")) return undefined;
  const dir = p.slice(0, p.lastIndexOf("/") + 1);
  if (dir.endsWith(".efi.extra.d/")) return "beside a UKI in <uki>.efi.extra.d/";
  if (dir === "/loader/extensions/") return "in /loader/extensions/";
  return undefined;
}
