// The native conformance suite: each tests/native/*_prog.ts is run under Node (over NodeKernel)
// and compiled by porffor to a static binary (over LinuxKernel); the outputs must be identical.
// Two programs are checked otherwise (PROGRAMS): layout reads porffor's value layout from C, and
// defects must show exactly the defects of toolchain/porffor/defects.ts, so that a compiler that
// fixes or changes one is noticed. Each program is also cross-built for arm64 and run under
// qemu-user (Debian's qemu-user-static runs static aarch64 binaries): the same outputs.
import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { ARCHES, isArch } from "../toolchain/arches.js";
import type { Arch } from "../toolchain/arches.js";
import { buildDefines, compileNative } from "../toolchain/native.mjs";
import { PORFFOR_DEFECTS } from "../toolchain/porffor/defects.js";
import type { PorfforDefect } from "../toolchain/porffor/defects.js";
import { ROOT } from "../toolchain/tools.mjs";

const OUT = join(ROOT, ".build", "native");

/** Programs not compared with Node: native only, or made of what the bundler refuses. */
const PROGRAMS: Record<string, { nativeOnly?: boolean; allowHazards?: boolean; own?: boolean }> = {
  layout: { nativeOnly: true, own: true },
  defects: { allowHazards: true, own: true },
};

const ARCH_NAMES = Object.keys(ARCHES).filter(isArch);

/** Builds one program both ways for `arch` (the Node side with the same build facts); returns paths. */
async function buildProgram(
  name: string,
  arch: Arch = "x86-64",
): Promise<{ native: string; node?: string; arch: Arch }> {
  const how = PROGRAMS[name] ?? {};
  const suffix = ARCHES[arch].distSuffix;
  mkdirSync(OUT, { recursive: true });
  const prog = join(ROOT, "tests", "native", `${name}_prog.ts`);
  const nativeEntry = join(OUT, `${name}${suffix}_native.ts`);
  writeFileSync(
    nativeEntry,
    `import { installNative, LinuxKernel } from ${JSON.stringify(join(ROOT, "syscalls", "linux.ts"))};
import { utf8Encode } from ${JSON.stringify(join(ROOT, "lib", "bytes.ts"))};
import { run } from ${JSON.stringify(prog)};
installNative();
const k = new LinuxKernel();
const scratch = "/tmp/storage-init-native-" + k.getpid();
k.mkdir(scratch, 0o700);
const lines = run(k, scratch);
k.rmdir(scratch);
for (const l of lines) k.write(1, utf8Encode(l + "\\n"));
`,
  );
  const native = await compileNative(nativeEntry, join(OUT, name + suffix), {
    quiet: true,
    allowHazards: how.allowHazards === true,
    arch,
  });
  if (how.nativeOnly) return { native, arch };
  const node = join(OUT, `${name}${suffix}_node.mjs`);
  await build({
    stdin: {
      contents: `import { NodeKernel } from ${JSON.stringify(join(ROOT, "cli", "node_kernel.ts"))};
import { run } from ${JSON.stringify(prog)};
globalThis.Porffor = { c() { throw new Error("inline C under Node"); } };
const k = new NodeKernel();
for (const l of run(k, process.argv[2])) process.stdout.write(l + "\\n");
`,
      resolveDir: ROOT,
      loader: "ts",
    },
    bundle: true,
    platform: "node",
    format: "esm",
    define: Object.fromEntries(Object.entries(buildDefines(arch)).map(([k, v]) => [k, JSON.stringify(v)])),
    outfile: node,
    logLevel: "warning",
  });
  return { node, native, arch };
}

function runBoth(p: { native: string; node?: string; arch: Arch }): { native: string; node?: string } {
  const scratch = mkdtempSync(join(tmpdir(), "si-native-"));
  try {
    // Both get the scratch directory as their argument (the native one makes its own and
    // ignores it): syscalls_prog prints the arguments each saw.
    const [cmd, ...args] = [...ARCHES[p.arch].runner, p.native, scratch];
    const native = execFileSync(cmd, args, { encoding: "utf8", timeout: 120000 });
    const node = p.node
      ? execFileSync(process.execPath, [p.node, scratch], { encoding: "utf8", timeout: 60000 })
      : undefined;
    return { native, node };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const programs = readdirSync(join(ROOT, "tests", "native"))
  .filter((f) => f.endsWith("_prog.ts"))
  .map((f) => f.slice(0, -"_prog.ts".length));

/** A foreign architecture's cases need the cross compiler, its libc and qemu-user; under CI they must be there. */
function missingFor(arch: Arch): string | undefined {
  const a = ARCHES[arch];
  if (!a.foreign) return undefined;
  const missing = [a.cc, ...a.runner.slice(0, 1)].filter((tool) => {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (a.libc !== undefined && !existsSync(a.libc.file)) missing.push(a.libc.package);
  if (missing.length === 0) return undefined;
  const why = `${missing.join(", ")} missing: .ci/install installs them`;
  if (process.env.CI) throw new Error(why);
  return why;
}
const MISSING = new Map(ARCH_NAMES.map((arch) => [arch, missingFor(arch)]));
const archTest = (arch: Arch) => (MISSING.get(arch) !== undefined ? test.skip : test);
const archName = (arch: Arch) => (ARCHES[arch].foreign ? `native ${arch}` : "native");

for (const arch of ARCH_NAMES) {
  for (const name of programs.filter((n) => PROGRAMS[n]?.own !== true)) {
    archTest(arch)(`${archName(arch)} ${name}: the porffor build prints exactly what Node prints`, async (t) => {
      const out = runBoth(await buildProgram(name, arch));
      t.true(out.native.length > 0);
      t.is(out.native, out.node ?? "");
    });
  }

  archTest(arch)(
    `${archName(arch)} layout: the shim reads porffor's value layout as the JS side sees it`,
    async (t) => {
      const out = runBoth(await buildProgram("layout", arch));
      t.deepEqual(out.native.trim().split("\n"), [
        "subarray: type 81 length 3 first 13 (js: length 3 first 13)",
        "write through view: 99",
        "number round trip: 2469",
      ]);
    },
  );
}

const RUNTIME_DEFECTS = PORFFOR_DEFECTS.filter((d) => d.kind === "runtime");
const answer = (d: PorfforDefect, side: "node" | "native") =>
  `${d.id}: ${(d.probe as { node: string; native: string })[side]}`;

test("native defects: porffor's runtime defects are exactly those of toolchain/porffor/defects.ts", async (t) => {
  const out = runBoth(await buildProgram("defects"));
  t.deepEqual(
    (out.node ?? "").trim().split("\n"),
    RUNTIME_DEFECTS.map((d) => answer(d, "node")),
    "Node's reference answers",
  );
  t.deepEqual(
    out.native.trim().split("\n"),
    RUNTIME_DEFECTS.map((d) => answer(d, "native")),
    "a changed line means porffor changed: re-check the workaround its id tags",
  );
});

// porffor reads TypeScript itself, keeps JS names in its C, and crashes on a few programs, with
// defects the bundler and the code work around; each probe is compiled as written (no tsbundle)
// so that a porffor that fixes one is noticed.
const PARSER_DEFECTS = PORFFOR_DEFECTS.filter((d) => d.kind !== "runtime").map((d) => ({
  id: d.id,
  ...(d.probe as { source: string; native: string }),
}));

test("native typescript: porffor's parser, compile and crash defects are still those of toolchain/porffor/defects.ts", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "si-porf-ts-"));
  const porf = join(ROOT, "node_modules", "porffor", "porf");
  try {
    const seen = PARSER_DEFECTS.map(({ id, source }, i) => {
      const src = join(dir, `d${i}.ts`);
      writeFileSync(src, source);
      try {
        execFileSync(porf, ["c", src, "-o", join(dir, `d${i}.c`)], { stdio: "ignore" });
      } catch {
        return [id, "parse error"];
      }
      try {
        execFileSync("musl-gcc", ["-static", "-O0", "-w", join(dir, `d${i}.c`), "-o", join(dir, `d${i}`), "-lm"], {
          stdio: "ignore",
        });
      } catch {
        return [id, "C compile error"];
      }
      let out: string;
      try {
        out = execFileSync(join(dir, `d${i}`), [], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        const failed = e as { stderr?: string; signal?: string };
        out = failed.signal ? "signal " + failed.signal : String(failed.stderr);
      }
      return [id, out.trim()];
    });
    t.deepEqual(
      seen,
      PARSER_DEFECTS.map(({ id, native }) => [id, native]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
