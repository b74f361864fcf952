// The native build: a typed TypeScript bundle (toolchain/tsbundle) -> porffor's C, with
// PORFFOR_C_EDITS applied -> a static musl binary, for x86-64 (musl-gcc) or arm64 (Debian's
// aarch64-linux-gnu-gcc cross compiler with musl-dev:arm64 through musl's own gcc specs file:
// the same libc on both, static and small, where static glibc would add hundreds of KiB and
// warn of what it cannot link statically).
//
// gcc flags: -Oz (the init does little computing); link-time optimization, which drops what
// porffor's dispatch tables reference but nothing calls; no unwind tables, which nothing reads;
// no page-aligned padding between code and data, nor before the end of RELRO, which musl
// protects only in its dynamic linker, not in a static binary.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { archFacts } from "./arches.ts";
import { tunePorfforC } from "./porffor/c_edits.mjs";
import { kib, requireTool, ROOT, step, WORK } from "./tools.mjs";
import { bundleTypeScript } from "./tsbundle/bundle.mjs";

const PORF = join(ROOT, "node_modules", "porffor", "porf");

/**
 * Build facts the init declares (runtime/build_facts.ts); tsbundle writes them in as literals.
 * `rootPolicy` "signed": the init requires signed roots (storage_init.root_policy=);
 * `minVersion`: the oldest image version it boots (storage_init.min_version=), "" for none;
 * `certificates`: SHA-256 fingerprints of the only certificates whose root signatures it takes.
 */
export function buildDefines(arch = "x86-64", rootPolicy = "verity", minVersion = "", certificates = []) {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  return {
    STORAGE_INIT_VERSION: pkg.version,
    STORAGE_INIT_ARCH: arch,
    STORAGE_INIT_ROOT_POLICY: rootPolicy,
    STORAGE_INIT_MIN_VERSION: minVersion,
    STORAGE_INIT_CERTIFICATES: certificates.join(","),
  };
}

/**
 * TypeScript entry -> static executable at `out`; returns `out`. The linked binary with its
 * symbols is kept beside it as `<out>.debug` (`out` is that file stripped, byte for byte what
 * `-s` gives), for gdb and for the bench's code profile. The work files are removed after a good
 * build.
 */
export async function compileNative(
  entry,
  out,
  {
    quiet = false,
    allowHazards = false,
    arch = "x86-64",
    rootPolicy = "verity",
    minVersion = "",
    certificates = [],
  } = {},
) {
  const target = archFacts(arch);
  requireTool(target.cc);
  if (target.libc && !existsSync(target.libc.file))
    throw new Error(
      `${target.libc.file} not found: install it with 'apt-get install ${target.libc.package}' (dpkg --add-architecture ${target.debian} first)`,
    );
  const name = out.split("/").pop();
  // Unique work files: tests build natives in parallel.
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const ts = join(WORK, `${name}.${tag}.ts`);
  const c = join(WORK, `${name}.${tag}.c`);
  mkdirSync(WORK, { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  const log = quiet ? async (_w, fn) => fn() : step;
  await log(`bundle ${relative(ROOT, entry)} (typed)`, async () => {
    writeFileSync(
      ts,
      bundleTypeScript(entry, {
        tsconfig: join(ROOT, "tsconfig.json"),
        defines: buildDefines(arch, rootPolicy, minVersion, certificates),
        allowHazards,
      }),
    );
    return `-> ${relative(ROOT, ts)}`;
  });
  await log("porffor", async () => {
    execFileSync(PORF, ["c", ts, "-o", c], { stdio: ["ignore", "ignore", "inherit"] });
    writeFileSync(c, tunePorfforC(readFileSync(c, "utf8")));
    return `-> ${relative(ROOT, c)}`;
  });
  await log(`${target.cc} -static (${arch})`, async () => {
    execFileSync(
      target.cc,
      [
        ...target.ccArgs,
        "-static",
        "-Oz",
        "-flto=auto",
        "-fno-asynchronous-unwind-tables",
        "-ffunction-sections",
        "-fdata-sections",
        "-Wl,--gc-sections",
        "-Wl,-z,noseparate-code",
        "-Wl,-z,norelro",
        "-Wl,--build-id=none",
        // Every way out of the process goes through the shim's last words (syscalls/shim.h).
        "-Wl,--wrap=exit,--wrap=_exit,--wrap=_Exit,--wrap=abort",
        "-Wno-unused-function",
        "-Wno-unused-variable",
        "-Wno-unused-but-set-variable",
        "-I",
        join(ROOT, "syscalls"),
        c,
        "-o",
        `${out}.debug`,
        "-lm",
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    execFileSync(target.strip, ["-o", out, `${out}.debug`]);
    return `-> ${relative(ROOT, out)} ${kib(statSync(out).size)}`;
  });
  rmSync(ts);
  rmSync(c);
  return out;
}
