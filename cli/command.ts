/**
 * The `storage-init` command, for image builders and kernel-install: `build` packs the compiled
 * init into an initramfs with the storage modules of a kernel, `uki` puts it into a Unified
 * Kernel Image with the kernel and a signed command line, `check` says what the boot would do
 * with a disk. Each subcommand takes --help; an option it does not know is named with the one
 * meant, or with the options it takes.
 *
 * From a source tree the init is dist/storage-init[-<arch>] (`node build.mjs` compiles it);
 * installed (the Debian package, `npm run deb`), it is in the folder the bundle was built for,
 * /usr/lib/storage-init. Packing needs Node, and xz or zstd for a kernel whose modules are
 * compressed: porffor and a C compiler made the init.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { checkRootHash } from "../lib/root_hash.js";
import type { PolicyFacts } from "../runtime/build_facts.js";
import { parseCmdline, verificationRefusal } from "../runtime/cmdline.js";
import type { RootPolicy } from "../runtime/cmdline.js";
import { ARCHES, archFacts, distName, isArch } from "../toolchain/arches.ts";
import { BUILD_FACTS_PATH, modulesDirOf, packInitramfs, readBuildFacts } from "../toolchain/init_image.mjs";
import { readCpio } from "../toolchain/initramfs.mjs";
import { buildUki, DEFAULT_OS_RELEASE, readSection, stubFor } from "../toolchain/uki.mjs";
import { DIST, kib } from "../toolchain/tools.mjs";
import { arm64PageSize, check } from "./check.js";

declare const STORAGE_INIT_LIBDIR: string | undefined;

/** Where the compiled inits are: the package's folder, or the source tree's dist/. */
export const LIBDIR = typeof STORAGE_INIT_LIBDIR === "undefined" ? DIST : STORAGE_INIT_LIBDIR;

/** A mistake in how the command was called: exit status 2, with the subcommand's usage. */
export class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;

interface Option {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** For --help: the value's name and what the option does. */
  arg?: string;
  help: string;
}

interface Subcommand {
  /** One line: what it does. */
  summary: string;
  /** The positional arguments, for the usage line. */
  positionals: string;
  options: Record<string, Option>;
  run(values: Values, positionals: string[]): Promise<number>;
}

/** The architecture of the machine running the command, in the table's spelling. */
function hostArch(): string {
  return process.arch === "arm64" ? "arm64" : "x86-64";
}

function archOption(values: Values): string {
  const arch = (values.arch as string | undefined) ?? hostArch();
  if (!isArch(arch)) throw new UsageError(`--arch ${arch}: ${Object.keys(ARCHES).join(" or ")}`);
  return arch;
}

/** The modules directory (lib/modules/<release>) the options name, or undefined with --no-modules. */
function modulesDir(values: Values): string | undefined {
  const given = ["kernel", "kernel-version", "modules-dir", "no-modules"].filter((k) => values[k] !== undefined);
  if (given.length !== 1)
    throw new UsageError(
      "name the kernel once: --kernel-version V (an installed kernel's /lib/modules/V), --kernel DIR " +
        "(a kernel tree unpacked in DIR), --modules-dir DIR (a lib/modules/<release>) or --no-modules" +
        (given.length > 1 ? ` (given: ${given.map((k) => "--" + k).join(", ")})` : ""),
    );
  if (values["no-modules"]) return undefined;
  if (values.kernel !== undefined) return modulesDirOf(resolve(values.kernel as string));
  if (values["modules-dir"] !== undefined) return resolve(values["modules-dir"] as string);
  const release = values["kernel-version"] as string;
  // Debian 13 ships modules under /usr/lib/modules (/lib is a link to usr/lib there).
  const dir = ["/usr/lib/modules", "/lib/modules"].map((d) => join(d, release)).find((d) => existsSync(d));
  if (dir === undefined)
    throw new Error(`--kernel-version ${release}: no /usr/lib/modules/${release} or /lib/modules/${release}`);
  return dir;
}

const build: Subcommand = {
  summary: "pack the compiled init and a kernel's storage modules into an initramfs",
  positionals: "",
  options: {
    "kernel-version": {
      type: "string",
      arg: "V",
      help: "the modules of the installed kernel V (/usr/lib/modules/V), as `uname -r` prints it",
    },
    kernel: {
      type: "string",
      arg: "DIR",
      help: "the modules of a kernel tree unpacked in DIR (DIR/lib/modules/<release>)",
    },
    "modules-dir": {
      type: "string",
      arg: "DIR",
      help: "the modules in DIR, a lib/modules/<release> with depmod's files",
    },
    "no-modules": { type: "boolean", help: "no modules: a kernel with its storage drivers built in" },
    output: { type: "string", short: "o", arg: "FILE", help: "the initramfs to write (gzip-compressed newc cpio)" },
    storage: {
      type: "string",
      arg: "CLASS,...",
      help: "the storage classes whose drivers go in: virtio, nvme, sata, usb, mmc, ufs, or all (the default)",
    },
    arch: { type: "string", arg: "ARCH", help: "the init's architecture, x86-64 or arm64 (default: this machine's)" },
    init: { type: "string", arg: "FILE", help: "the compiled init to pack (default: the installed one for --arch)" },
  },
  async run(values) {
    const out = values.output as string | undefined;
    if (out === undefined) throw new UsageError("--output FILE is needed: where the initramfs goes");
    const arch = archOption(values);
    const init =
      values.init !== undefined ? resolve(values.init as string) : join(LIBDIR, distName(arch, "storage-init"));
    const built = readBuildFacts(init).arch;
    if (built !== arch) throw new Error(`${init} was built for ${built}, not ${arch}`);
    const dir = modulesDir(values);
    const storage = ((values.storage as string | undefined) ?? "all").split(",");
    await packInitramfs({ init, out: resolve(out), modulesDir: dir, storage });
    return 0;
  },
};

/** The policy facts an initramfs written by `storage-init build` records; undefined for another initramfs. */
export function initramfsFacts(initrd: Uint8Array): (PolicyFacts & { arch: string }) | undefined {
  let entries;
  try {
    entries = readCpio(gunzipSync(initrd));
  } catch {
    return undefined; // not an initramfs this build wrote
  }
  const entry = entries.find((e) => e.path === BUILD_FACTS_PATH);
  if (entry === undefined || entry.data === undefined) return undefined;
  const f = JSON.parse(Buffer.from(entry.data).toString("utf8"));
  return {
    arch: f.arch,
    rootPolicy: f.rootPolicy as RootPolicy,
    minVersion: f.minVersion,
    certificates: f.certificates,
  };
}

/**
 * systemd-stub for an init of `arch`: installed, the package's systemd-boot-efi for that
 * architecture; in a clone, what the toolchain uses (fetched for a foreign architecture).
 */
function defaultStub(arch: string): string {
  if (typeof STORAGE_INIT_LIBDIR === "undefined") return stubFor(arch);
  return `/usr/lib/systemd/boot/efi/linux${archFacts(arch).uefi.efi}.efi.stub`;
}

const uki: Subcommand = {
  summary: "a Unified Kernel Image: systemd-stub, the kernel, the initramfs and the command line it pins",
  positionals: "",
  options: {
    linux: { type: "string", arg: "FILE", help: "the kernel image (vmlinuz)" },
    initrd: { type: "string", arg: "FILE", help: "the initramfs `storage-init build` wrote" },
    output: { type: "string", short: "o", arg: "FILE", help: "the UKI to write" },
    roothash: {
      type: "string",
      arg: "HEX",
      help: "the DDI's root hash, which the signed command line pins (roothash=)",
    },
    cmdline: { type: "string", arg: "TEXT", help: "more of the kernel command line (storage_init.*, console=, ...)" },
    uname: {
      type: "string",
      arg: "V",
      help: "the kernel's release for .uname (default: from the file name vmlinuz-V)",
    },
    "os-release": { type: "string", arg: "FILE", help: "the .osrel section: what the boot menu shows" },
    stub: {
      type: "string",
      arg: "FILE",
      help: "systemd-stub (default: systemd-boot-efi's linux<arch>.efi.stub for the init's architecture)",
    },
    "secureboot-private-key": {
      type: "string",
      arg: "KEY",
      help: "sign the UKI for Secure Boot (sbsign) with this key",
    },
    "secureboot-certificate": { type: "string", arg: "CERT", help: "... and this certificate" },
  },
  async run(values) {
    const need = (k: string, what: string) => {
      if (values[k] === undefined) throw new UsageError(`--${k} ${what} is needed`);
      return resolve(values[k] as string);
    };
    const linux = need("linux", "FILE (the kernel image)");
    const initrd = need("initrd", "FILE (the initramfs)");
    const out = need("output", "FILE (the UKI to write)");
    const pair = (a: string, b: string) => {
      if ((values[a] === undefined) !== (values[b] === undefined))
        throw new UsageError(`--${a} and --${b} go together`);
      return values[a] === undefined ? undefined : [resolve(values[a] as string), resolve(values[b] as string)];
    };
    const sign = pair("secureboot-private-key", "secureboot-certificate");
    let rootHash = "";
    if (values.roothash !== undefined) {
      const h = checkRootHash(values.roothash as string);
      if (h.error !== undefined) throw new UsageError(`--roothash ${h.error}`);
      rootHash = `roothash=${h.hash}`;
    }
    const cmdline = `${rootHash} ${(values.cmdline as string | undefined) ?? ""}`.trim();
    // The init's own reading of the command line it will be given, with the policy it was built with.
    const facts = initramfsFacts(readFileSync(initrd));
    if (facts === undefined)
      throw new Error(`${initrd}: not an initramfs storage-init build wrote (it records no ${BUILD_FACTS_PATH})`);
    const config = parseCmdline(cmdline, facts);
    if (config.problems.length > 0) throw new Error(`the command line: ${config.problems.join("; ")}`);
    const refusal = verificationRefusal(config);
    if (refusal !== "")
      throw new Error(`the init would refuse this command line: ${refusal} (--roothash HEX pins the DDI)`);
    const uname = (values.uname as string | undefined) ?? /^vmlinu[xz]-(.+)$/.exec(basename(linux))?.[1];
    if (uname === undefined) throw new UsageError(`--uname V is needed: ${linux} is not named vmlinuz-<release>`);
    const stub = values.stub !== undefined ? resolve(values.stub as string) : defaultStub(facts.arch);
    if (!existsSync(stub))
      throw new Error(`${stub}: no such file (systemd-stub: Debian's systemd-boot-efi, or --stub FILE)`);
    const r = buildUki({
      stub,
      kernel: linux,
      initrd,
      cmdline,
      osRelease:
        values["os-release"] !== undefined
          ? readFileSync(resolve(values["os-release"] as string), "utf8")
          : DEFAULT_OS_RELEASE,
      uname,
      out,
      sign: sign && { key: sign[0], cert: sign[1] },
    });
    console.log(
      `uki: -> ${out} ${kib(r.size)}${sign ? " (signed)" : ""}: ` +
        r.sections.map((x: { name: string; size: number }) => `${x.name} ${kib(x.size)}`).join(", "),
    );
    return 0;
  },
};

const PAGE_SIZES = [4096, 16384, 65536];

const checkCommand: Subcommand = {
  summary: "what the boot would do with a disk image or an ESP directory; exit 0 only for a verified root",
  positionals: "DISK-IMAGE-OR-ESP-DIR",
  options: {
    cmdline: { type: "string", arg: "TEXT", help: "the kernel command line the boot would have" },
    uki: {
      type: "string",
      arg: "FILE",
      help: "... or the command line of a UKI, and the policy its init was built with",
    },
    arch: { type: "string", arg: "ARCH", help: "the target's architecture (default: the UKI's init's, else x86-64)" },
    "page-size": { type: "string", arg: "BYTES", help: "the target kernel's page size: 4096, 16384 or 65536" },
    certificate: {
      type: "string",
      multiple: true,
      arg: "PEM",
      help: "a certificate the target kernel trusts for dm-verity signatures (repeatable)",
    },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new UsageError("one DISK-IMAGE-OR-ESP-DIR is needed");
    if ((values.cmdline === undefined) === (values.uki === undefined))
      throw new UsageError("--cmdline TEXT or --uki FILE is needed, one of them");
    let cmdline = values.cmdline as string | undefined;
    let facts: ReturnType<typeof initramfsFacts>;
    let pageSize: number | undefined;
    if (values["page-size"] !== undefined) {
      pageSize = Number(values["page-size"]);
      if (!PAGE_SIZES.includes(pageSize)) throw new UsageError(`--page-size takes ${PAGE_SIZES.join(", ")}`);
    }
    if (values.uki !== undefined) {
      const file = values.uki as string;
      cmdline = readSection(file, ".cmdline").toString("utf8").trim();
      facts = initramfsFacts(readSection(file, ".initrd"));
      pageSize ??= arm64PageSize(readSection(file, ".linux"));
    }
    const v = check(positionals[0], cmdline as string, {
      arch: (values.arch as string | undefined) ?? facts?.arch ?? "x86-64",
      certificates: (values.certificate as string[] | undefined) ?? [],
      build: facts,
      pageSize,
    });
    for (const l of v.lines) console.log(l);
    return v.ok ? 0 : 1;
  },
};

export const SUBCOMMANDS: Record<string, Subcommand> = { build, uki, check: checkCommand };

function usageLine(name: string, c: Subcommand): string {
  return `usage: storage-init ${name} [options]${c.positionals ? " " + c.positionals : ""}`;
}

/** The text --help prints for subcommand `name`. */
export function helpText(name: string): string {
  const c = SUBCOMMANDS[name];
  const lines = [usageLine(name, c), "", c.summary, "", "options:"];
  const rows = Object.entries(c.options).map(([k, o]) => [
    `  ${o.short ? `-${o.short}, ` : ""}--${k}${o.arg ? " " + o.arg : ""}`,
    o.help,
  ]);
  rows.push(["  -h, --help", "this text"]);
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  for (const [left, right] of rows) lines.push(left.padEnd(width) + right);
  return lines.join("\n");
}

function overview(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((n) => n.length)) + 4;
  return [
    "usage: storage-init COMMAND [options]",
    "",
    ...Object.entries(SUBCOMMANDS).map(([n, c]) => `  ${n.padEnd(width)}${c.summary}`),
    "",
    "storage-init COMMAND --help says what each takes.",
  ].join("\n");
}

/** Levenshtein distance, for naming the option a mistyped one meant. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** What to say of an option `name` does not take: the one meant, or those it takes. */
export function unknownOption(name: string, given: string): string {
  const known = Object.keys(SUBCOMMANDS[name].options);
  const bare = given.replace(/^-+/, "").split("=")[0];
  const near = known.map((k) => ({ k, d: distance(bare, k) })).sort((x, y) => x.d - y.d)[0];
  const meant =
    near !== undefined && near.d <= Math.max(2, Math.floor(bare.length / 4))
      ? `did you mean --${near.k}?`
      : `it takes ${known.map((k) => "--" + k).join(", ")}`;
  return `unknown option ${given.split("=")[0]}: ${meant}`;
}

/** Runs the command for `argv` (without node and the script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(overview());
    return name === undefined ? 2 : 0;
  }
  const c = SUBCOMMANDS[name];
  if (c === undefined) {
    console.error(
      `storage-init: unknown command ${name}: it takes ${Object.keys(SUBCOMMANDS).join(", ")} (storage-init --help)`,
    );
    return 2;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...c.options, help: { type: "boolean", short: "h" } },
        allowPositionals: c.positionals !== "",
        strict: true,
      });
    } catch (e) {
      const err = e as { code?: string; message: string };
      const m = /Unknown option '([^']+)'/.exec(err.message);
      if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && m) throw new UsageError(unknownOption(name, m[1]));
      if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL")
        throw new UsageError(
          `${name} takes no argument without an option: ${err.message.replace(/^.*'([^']*)'.*$/s, "$1")}`,
        );
      throw new UsageError(err.message.split(". ")[0]);
    }
    if (parsed.values.help) {
      console.log(helpText(name));
      return 0;
    }
    return await c.run(parsed.values as Values, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`storage-init ${name}: ${e.message}\n${usageLine(name, c)} (storage-init ${name} --help)`);
      return 2;
    }
    console.error(`storage-init ${name}: ${(e as Error).message}`);
    return 1;
  }
}
