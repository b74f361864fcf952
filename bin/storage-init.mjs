#!/usr/bin/env node
// storage-init's command line for image builders (the init itself is dist/storage-init):
//
//   storage-init check DISK-IMAGE-OR-ESP-DIR --cmdline "roothash=... [storage_init.ddi=...]"
//   storage-init check DISK-IMAGE-OR-ESP-DIR --uki FILE      (the command line from a UKI, and
//                                                             what its init was built to require)
//                      [--arch x86-64|arm64] [--page-size BYTES] [--certificate PEM]...
//
// --certificate: a certificate the target kernel trusts for dm-verity signatures (an enrolled
// MOK, a key built into the kernel); a signature the boot would have the kernel check is checked
// against them. --page-size: the target kernel's (the largest verity block it takes); with --uki,
// an arm64 kernel's header says it, and the architecture is the UKI's init's.
//
// Says which DDI the boot would take and whether its root verifies; exits 0 only when the boot
// would reach a verified root, 1 when it would not, 2 on a usage error.
import { register } from "tsx/esm/api";

register();
const { arm64PageSize, check } = await import("../cli/check.ts");
const { readSection } = await import("../toolchain/uki.mjs");
const { readCpio } = await import("../toolchain/initramfs.mjs");
const { BUILD_FACTS_PATH } = await import("../toolchain/init_image.mjs");
const { gunzipSync } = await import("node:zlib");

/**
 * The policy facts the UKI's init was built with (--root-policy, --min-version, --certificate),
 * from its initramfs; undefined when the initramfs does not record them.
 */
function ukiFacts(uki) {
  let entries;
  try {
    entries = readCpio(gunzipSync(readSection(uki, ".initrd")));
  } catch {
    return undefined; // not an initramfs this build wrote
  }
  const entry = entries.find((e) => e.path === BUILD_FACTS_PATH);
  if (entry === undefined) return undefined;
  const f = JSON.parse(Buffer.from(entry.data).toString("utf8"));
  return { arch: f.arch, build: { rootPolicy: f.rootPolicy, minVersion: f.minVersion, certificates: f.certificates } };
}

const USAGE =
  "usage: storage-init check DISK-IMAGE-OR-ESP-DIR (--cmdline TEXT | --uki FILE) [--arch x86-64|arm64] [--page-size BYTES] [--certificate PEM]...";

function main(argv) {
  if (argv[0] !== "check" || argv.length < 2) throw new Error(USAGE);
  let cmdline;
  let build;
  let arch;
  let ukiArch;
  let pageSize;
  const certificates = [];
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === "--cmdline" && i + 1 < argv.length) cmdline = argv[++i];
    else if (argv[i] === "--uki" && i + 1 < argv.length) {
      const uki = argv[++i];
      cmdline = readSection(uki, ".cmdline").toString("utf8").trim();
      const facts = ukiFacts(uki);
      build = facts?.build;
      ukiArch = facts?.arch;
      pageSize ??= arm64PageSize(readSection(uki, ".linux"));
    } else if (argv[i] === "--arch" && i + 1 < argv.length) arch = argv[++i];
    else if (argv[i] === "--page-size" && i + 1 < argv.length) {
      pageSize = Number(argv[++i]);
      if (![4096, 16384, 65536].includes(pageSize)) throw new Error(`--page-size takes 4096, 16384 or 65536; ${USAGE}`);
    } else if (argv[i] === "--certificate" && i + 1 < argv.length) certificates.push(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}; ${USAGE}`);
  }
  if (cmdline === undefined) throw new Error(`--cmdline or --uki is needed; ${USAGE}`);
  const v = check(argv[1], cmdline, { arch: arch ?? ukiArch ?? "x86-64", certificates, build, pageSize });
  for (const l of v.lines) console.log(l);
  return v.ok ? 0 : 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(`storage-init: ${e.message}`);
  process.exitCode = 2;
}
