#!/usr/bin/env node
// The build's command line. What it runs lives in toolchain/ (docs/architecture.md).
//
//   node build.mjs [--arch x86-64|arm64] [--kernel DIR] [--storage virtio,nvme,sata,usb,mmc,ufs|all]
//                                       dist/storage-init and dist/initramfs-<storage>.cpio.gz
//                                       with the storage module closure of the kernel unpacked
//                                       in DIR (DIR/lib/modules/<version>, DIR/boot/vmlinuz-*);
//                                       without --kernel, Debian's kernel that
//                                       qemu/kernel.mjs fetches (nothing is installed);
//                                       --arch arm64 cross-builds dist/storage-init-arm64 and
//                                       dist/initramfs-arm64-<storage>.cpio.gz
//   node build.mjs --uki --roothash HEX [--cmdline "..."] [--sign-key KEY --sign-cert CERT]
//                  [--os-release FILE] [--kernel DIR] [--storage ...]
//                                       ... and dist/storage-init.efi: systemd-stub with that
//                                       kernel, the initramfs and the command line (signed for
//                                       Secure Boot with sbsign when a key is given)
//   node build.mjs --uki ... --pcr-private-key KEY --pcr-public-key PEM
//                                       ... with the signed PCR 11 policy systemd-measure (254,
//                                       from bookworm-backports) predicts for the UKI, in .pcrsig,
//                                       and the public key in .pcrpkey, as ukify writes them: for
//                                       a second stage that unlocks a volume enrolled with
//                                       systemd-cryptenroll --tpm2-public-key=PEM
//   node build.mjs --root-policy signed ...
//                                       an init that requires signed roots: the root hash from
//                                       the DDI's signature partition, checked by the kernel
//                                       (storage_init.root_policy=signed, which the command
//                                       line cannot lower); --uki then takes no --roothash
//   node build.mjs --certificate PEM ...
//                                       an init that takes root signatures only from this
//                                       certificate (repeatable; its SHA-256 built in, where
//                                       storage_init.certificate_fingerprint= would name it)
//   node build.mjs --min-version V ...  an init that activates no image older than V (IMAGE_VERSION=
//                                       of the image's os-release; storage_init.min_version=,
//                                       which the command line can raise, never lower)
//   node build.mjs --ddi FILE [--roothash HEX] ...
//                                       the DDI in FILE carried in memory, for a boot without an
//                                       ESP (or before it): dist/ddi.cpio, an initramfs archive
//                                       with FILE as /ddi/<the last part of storage_init.ddi=>,
//                                       for a boot loader's second initrd, and with --uki in the
//                                       UKI's .initrd after the init's own archive (covered by its
//                                       signature). Refused unless the command line would take it:
//                                       roothash= pins it, or the signed policy's signature
//                                       verifies with a --certificate; says what it costs in RAM
//   node build.mjs tests                what the boot tests boot: the init with every storage
//                                       class, for the Debian kernels qemu/kernel.mjs fetches
//                                       (x86-64 and arm64)
//
// `npm run build` type-checks first (tsc --noEmit): the bundler relies on the annotations.
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { register } from "tsx/esm/api";

// The toolchain imports the TypeScript it shares with the init (the module table format).
register();
const { buildInit } = await import("./toolchain/build_init.mjs");
const { hardwareModules } = await import("./toolchain/module_closure.ts");
const { buildUki, DEFAULT_OS_RELEASE, stubFor } = await import("./toolchain/uki.mjs");
const { DIST, ROOT, kib, mib } = await import("./toolchain/tools.mjs");
const { ddiArchive, initrdWithDdi, kernelRelease, memoryPathOf } = await import("./toolchain/init_image.mjs");
const { ddiPathsOf } = await import("./lib/cmdline_words.ts");
const { DEFAULT_DDI_PATH } = await import("./lib/facts.ts");
const { ARCHES, distName, isArch } = await import("./toolchain/arches.ts");
const { versionProblem } = await import("./runtime/vpick.ts");
const { checkRootHash } = await import("./lib/root_hash.ts");

const USAGE =
  "usage: node build.mjs [--arch x86-64|arm64] [--kernel DIR] [--storage CLASS,...] [--root-policy verity|signed] [--certificate PEM] [--min-version V] " +
  "[--ddi FILE] [--roothash HEX] [--uki [--cmdline TEXT] " +
  "[--sign-key KEY --sign-cert CERT] [--pcr-private-key KEY --pcr-public-key PEM] [--os-release FILE]] | tests";

/** The SHA-256 fingerprint of the PEM certificate in `file`, lower-case hex (as certificateFingerprint). */
function certificateFingerprint(file) {
  const fp = new X509Certificate(readFileSync(resolve(file))).fingerprint256;
  return fp.split(":").join("").toLowerCase();
}

/**
 * Refuses the DDI `o.ddi` unless the boot would take it from memory at `at` with `cmdline`
 * (checkMemoryDdi(): its name, then roothash= pins it and the root hash recomputed over its data
 * matches, or the signed policy's signature verifies with a --certificate); before anything is
 * built.
 */
async function checkCarriedDdi(o, at, cmdline) {
  const { checkMemoryDdi } = await import("./cli/check.ts");
  const facts = { rootPolicy: o.rootPolicy, minVersion: o.minVersion, certificates: o.certificates.join(",") };
  const options = { arch: o.arch, build: facts, certificates: o.certificateFiles };
  const verdict = checkMemoryDdi(o.ddi, at, cmdline, options);
  for (const line of verdict.lines) console.log(`build: --ddi: ${line}`);
  if (!verdict.ok) throw new Error(`--ddi ${o.ddi}: the command line (${cmdline}) would not take it`);
}

/**
 * The DDI `o.ddi` carried in memory at `at`: dist/ddi[-<arch>].cpio, and the init's initramfs
 * `built` with it appended (the UKI's .initrd). Says what it costs in memory. Returns { archive,
 * initrd }.
 */
function carryDdi(o, at, built) {
  const archive = join(DIST, distName(o.arch, "ddi", ".cpio"));
  const contents = ddiArchive(o.ddi, at);
  writeFileSync(archive, contents);
  const initrd = join(DIST, `${basename(built.initramfs, ".cpio.gz")}+ddi.cpio`);
  initrdWithDdi(built.initramfs, contents, initrd);
  const bytes = contents.length;
  const size = statSync(o.ddi).size;
  console.log(
    `build: DDI ${relative(process.cwd(), o.ddi)} as ${at} in ${relative(ROOT, archive)} (${mib(bytes)}): ` +
      `in memory it holds ${mib(size)} of RAM from the initramfs's unpacking until its root is unmounted, ` +
      `and ${mib(bytes)} more until the kernel frees the initrd it was unpacked from`,
  );
  return { archive, initrd };
}

async function cli(argv) {
  if (argv[0] === "tests") {
    const { fetchKernel } = await import("./qemu/kernel.mjs");
    for (const arch of Object.keys(ARCHES))
      await buildInit({ kernelDir: fetchKernel(arch).root, storage: ["all"], arch });
    // Fetched here, once, what test files running side by side would otherwise each fetch into
    // the same cache folder: Debian 13's kernel, and the UEFI stub of each architecture.
    fetchKernel("x86-64", "trixie");
    for (const arch of Object.keys(ARCHES)) stubFor(arch);
    // The arm64 demo's tree: its second stage runs in an arm64 VM under TCG, longer than a test
    // runner waits for a test's preparation (20 minutes on a cold cache).
    const { buildDemoDisk } = await import("./qemu/demo_root.mjs");
    await buildDemoDisk("bookworm", "arm64");
    return;
  }
  const o = {
    storage: ["all"],
    uki: false,
    cmdline: "",
    arch: "x86-64",
    rootPolicy: "verity",
    minVersion: "",
    certificates: [],
    certificateFiles: [],
  };
  const value = (i) => {
    if (i >= argv.length) throw new Error(`${argv[i - 1]} needs a value; ${USAGE}`);
    return argv[i];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--kernel") o.kernelDir = resolve(value(++i));
    else if (a === "--storage") o.storage = value(++i).split(",");
    else if (a === "--uki") o.uki = true;
    else if (a === "--arch") o.arch = value(++i);
    else if (a === "--roothash") o.rootHash = value(++i);
    else if (a === "--root-policy") o.rootPolicy = value(++i);
    else if (a === "--min-version") o.minVersion = value(++i);
    else if (a === "--certificate") {
      o.certificateFiles.push(resolve(value(++i)));
      o.certificates.push(certificateFingerprint(o.certificateFiles.at(-1)));
    } else if (a === "--ddi") o.ddi = resolve(value(++i));
    else if (a === "--cmdline") o.cmdline = value(++i);
    else if (a === "--sign-key") o.signKey = resolve(value(++i));
    else if (a === "--sign-cert") o.signCert = resolve(value(++i));
    else if (a === "--os-release") o.osRelease = resolve(value(++i));
    else if (a === "--pcr-private-key") o.pcrPrivateKey = resolve(value(++i));
    else if (a === "--pcr-public-key") o.pcrPublicKey = resolve(value(++i));
    else throw new Error(`unknown argument ${a}; ${USAGE}`);
  }
  if (o.kernelDir && !existsSync(o.kernelDir)) throw new Error(`--kernel ${o.kernelDir}: no such directory`);
  if (!o.uki && (o.cmdline || o.signKey || o.signCert || o.osRelease || o.pcrPrivateKey || o.pcrPublicKey))
    throw new Error(`--cmdline, --sign-*, --pcr-* and --os-release are for --uki; ${USAGE}`);
  if (!o.uki && !o.ddi && o.rootHash) throw new Error(`--roothash is for --uki or --ddi; ${USAGE}`);
  if (o.ddi && !existsSync(o.ddi)) throw new Error(`--ddi ${o.ddi}: no such file`);
  if (o.ddi && o.rootHash === undefined && o.rootPolicy === "verity")
    throw new Error(
      "--ddi needs --roothash with the root hash the command line pins (or --root-policy signed), to refuse a DDI it does not",
    );
  if (!o.pcrPrivateKey !== !o.pcrPublicKey) throw new Error("--pcr-private-key and --pcr-public-key go together");
  if (!["verity", "signed"].includes(o.rootPolicy)) throw new Error(`--root-policy ${o.rootPolicy}: verity or signed`);
  if (o.uki && o.rootHash === undefined && o.rootPolicy === "verity")
    throw new Error(
      "--uki needs --roothash with the DDI's root hash: it is what the signed command line pins " +
        "(or --root-policy signed: the root hash from the DDI's own signature)",
    );
  if (o.rootHash !== undefined) {
    // The init's own check (roothash=), so that a UKI pins no hash its init refuses.
    const hash = checkRootHash(o.rootHash);
    if (hash.error !== undefined) throw new Error(`--roothash ${hash.error}`);
    o.rootHash = hash.hash;
  }
  if (o.minVersion !== "" && versionProblem(o.minVersion) !== "")
    throw new Error(`--min-version ${versionProblem(o.minVersion)}`);
  if (!o.signKey !== !o.signCert) throw new Error("--sign-key and --sign-cert go together");
  if (!isArch(o.arch)) throw new Error(`--arch ${o.arch}: ${Object.keys(ARCHES).join(" or ")}`);
  hardwareModules(o.storage, o.arch); // an unknown class stops here, before the compile
  if (!o.kernelDir) {
    const { fetchKernel } = await import("./qemu/kernel.mjs");
    const k = fetchKernel(o.arch);
    o.kernelDir = k.root;
    console.log(
      `build: kernel ${k.version} from Debian's ${k.package} (in ${relative(ROOT, k.root)}; --kernel DIR for another)`,
    );
  } else console.log(`build: kernel ${kernelRelease(o.kernelDir)} from ${o.kernelDir}`);
  const cmdline = `${o.rootHash === undefined ? "" : `roothash=${o.rootHash}`} ${o.cmdline}`.trim();
  // Where the DDI lies in memory: by the first path storage_init.ddi= names.
  const at = o.ddi && memoryPathOf(o.ddi, ddiPathsOf(cmdline)[0] ?? DEFAULT_DDI_PATH);
  if (o.ddi) await checkCarriedDdi(o, at, cmdline);
  const built = await buildInit({
    kernelDir: o.kernelDir,
    storage: o.storage,
    arch: o.arch,
    rootPolicy: o.rootPolicy,
    minVersion: o.minVersion,
    certificates: o.certificates,
  });
  const ddi = o.ddi ? carryDdi(o, at, built) : undefined;
  if (!o.uki) return;
  const release = kernelRelease(o.kernelDir);
  const vmlinuz = join(o.kernelDir, "boot", `vmlinuz-${release}`);
  if (!existsSync(vmlinuz)) throw new Error(`${vmlinuz}: the kernel image is missing from ${o.kernelDir}`);
  const uki = buildUki({
    stub: stubFor(o.arch),
    kernel: vmlinuz,
    initrd: ddi ? ddi.initrd : built.initramfs,
    cmdline,
    osRelease: o.osRelease ? readFileSync(o.osRelease, "utf8") : DEFAULT_OS_RELEASE,
    uname: release,
    out: join(DIST, distName(o.arch, "storage-init", ".efi")),
    sign: o.signKey ? { key: o.signKey, cert: o.signCert } : undefined,
    pcr: o.pcrPrivateKey ? { privateKey: o.pcrPrivateKey, publicKey: o.pcrPublicKey } : undefined,
  });
  console.log(
    `build: UKI -> ${relative(ROOT, uki.out)} ${kib(uki.size)}${o.signKey ? " (signed)" : ""}: ` +
      uki.sections.map((x) => `${x.name} ${kib(x.size)}`).join(", "),
  );
}

try {
  await cli(process.argv.slice(2));
} catch (e) {
  console.error(`build: ${e.message}`);
  process.exit(1);
}
