// The native conformance suite: each tests/native/*_prog.ts is run under Node (over NodeKernel)
// and compiled by porffor to a static binary (over LinuxKernel); the outputs must be identical.
// layout_prog is native-only (it reads porffor's value layout from C); defects_prog must show
// exactly the recorded defects, so that a compiler that fixes or changes them is noticed.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const ROOT = process.cwd();
const OUT = join(ROOT, ".build", "native");
const { compileNative } = (await import(join(ROOT, "build.mjs"))) as { compileNative: (entry: string, out: string, o: { quiet: boolean }) => Promise<string> };

const NATIVE_ONLY = new Set(["layout"]);

/** Builds one program both ways; returns paths. */
async function buildProgram(name: string): Promise<{ native: string; node?: string }> {
  mkdirSync(OUT, { recursive: true });
  const prog = join(ROOT, "tests", "native", `${name}_prog.ts`);
  const nativeEntry = join(OUT, `${name}_native.ts`);
  writeFileSync(
    nativeEntry,
    `import { LinuxKernel, nativeCrc32 } from ${JSON.stringify(join(ROOT, "syscalls", "linux.ts"))};
import { setCrc32Impl } from ${JSON.stringify(join(ROOT, "runtime", "crc32.ts"))};
import { utf8Encode } from ${JSON.stringify(join(ROOT, "syscalls", "bytes.ts"))};
import { run } from ${JSON.stringify(prog)};
setCrc32Impl(nativeCrc32); // as runtime/init.ts does
const k = new LinuxKernel();
const scratch = "/tmp/storage-init-native-" + k.getpid();
k.mkdir(scratch, 0o700);
const lines = run(k, scratch);
k.rmdir(scratch);
for (const l of lines) k.write(1, utf8Encode(l + "\\n"));
`,
  );
  const native = await compileNative(nativeEntry, join(OUT, name), { quiet: true });
  if (NATIVE_ONLY.has(name)) return { native };
  const node = join(OUT, `${name}_node.mjs`);
  await build({
    stdin: {
      contents: `import { NodeKernel } from ${JSON.stringify(join(ROOT, "tests", "node_kernel.ts"))};
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
    outfile: node,
    logLevel: "warning",
  });
  return { node, native };
}

function runBoth(p: { native: string; node?: string }): { native: string; node?: string } {
  const scratch = mkdtempSync(join(tmpdir(), "si-native-"));
  try {
    // Both get the scratch directory as their argument (the native one makes its own and
    // ignores it): syscalls_prog prints the arguments each saw.
    const native = execFileSync(p.native, [scratch], { encoding: "utf8", timeout: 60000 });
    const node = p.node ? execFileSync(process.execPath, [p.node, scratch], { encoding: "utf8", timeout: 60000 }) : undefined;
    return { native, node };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const programs = readdirSync(join(ROOT, "tests", "native"))
  .filter((f) => f.endsWith("_prog.ts"))
  .map((f) => f.slice(0, -"_prog.ts".length));

for (const name of programs.filter((n) => n !== "layout" && n !== "defects")) {
  test(`native ${name}: the porffor build prints exactly what Node prints`, async (t) => {
    const out = runBoth(await buildProgram(name));
    t.true(out.native.length > 0);
    t.is(out.native, out.node ?? "");
  });
}

test("native layout: the shim reads porffor's value layout as the JS side sees it", async (t) => {
  const out = runBoth(await buildProgram("layout"));
  t.deepEqual(out.native.trim().split("\n"), [
    "subarray: type 81 length 3 first 13 (js: length 3 first 13)",
    "write through view: 99",
    "number round trip: 2469",
  ]);
});

test("native defects: porffor alpha.7's known defects are still exactly as recorded", async (t) => {
  const out = runBoth(await buildProgram("defects"));
  const node = (out.node ?? "").trim().split("\n");
  const native = out.native.trim().split("\n");
  t.deepEqual(node, NODE_DEFECTS, "Node's reference output");
  t.deepEqual(native, NATIVE_DEFECTS, "a changed line means porffor changed: re-check the workaround it names");
});

const NODE_DEFECTS = [
  "try/return/finally: finally ran",
  "super.m(): derived of base",
  "extends Error message: boom",
  "TypedArray.join: correct",
  "Array.from(typed).join: 1,2,3",
  "user iterator: 01",
  "JSON.stringify above U+00FF: kept",
  "(1.96).toFixed(1): 2.0",
  "Math.round(0.5): 1",
  "local assigned in try, read in catch: inside",
  "typeof process: object",
  "typed array read past the end: undefined",
  "typed array write past the end lands in memory: 0",
  "String(2 ** 60): 1152921504606847000",
  '"a\\u20ac" > "a~": true',
];
// Each line names the workaround the code uses.
const NATIVE_DEFECTS = [
  "try/return/finally: finally skipped", // no `return` inside try with finally: close in catch + after
  "super.m(): derived of undefined", // no super calls
  "extends Error message: undefined", // KernelError is a plain class
  "TypedArray.join: wrong", // toHex / Array.from(u).join
  "Array.from(typed).join: 1,2,3",
  "user iterator: threw", // no user-defined iterators
  "JSON.stringify above U+00FF: truncated to 0xac", // q() for quoting in messages
  "(1.96).toFixed(1): 1.20", // the carry is lost: formatMs() in runtime/numbers.ts
  "Math.round(0.5): 0", // formatMs() rounds with Math.floor(x + 0.5)
  // try/catch is setjmp/longjmp: a local changed inside try is stale in catch (C11 7.13.2.1);
  // state a catch block reads lives in an object (BootState in runtime/main.ts).
  "local assigned in try, read in catch: before",
  "typeof process: undefined", // the kernel interface instead of process
  // No bounds checks on typed arrays: every parser checks offsets against the length itself
  // (the native fuzz runs in storage_prog and pure_prog compare with Node on hostile input).
  "typed array read past the end: 42",
  "typed array write past the end lands in memory: 7",
  // An integer from 2^53 to 2^64 is written with all its digits, not the shortest that reads
  // back the same: no value the init prints gets near 2^53 (parseDecimal takes 15 digits).
  "String(2 ** 60): 1152921504606846976",
  // A string with characters above U+00FF against one without. The init orders strings with
  // Array.prototype.sort, which is right, and compares with < only characters of modaliases and
  // their glob ranges, which the kernel and depmod write in ASCII.
  '"a\\u20ac" > "a~": false',
];

// porffor reads TypeScript itself, with defects tsbundle.mjs works around; each snippet is
// compiled as written (no tsbundle) so that a porffor that fixes one is noticed.
const TS_DEFECTS: Array<[string, string, string]> = [
  ["a < b", "const a = 1; const b = 2; console.log(a < b ? 'yes' : 'no');", "parse error"],
  ["a << 8", "const a = 1; console.log(String(a << 8));", "parse error"],
  ["({ ... })", "const o = ({ k: 1 }); console.log(String(o.k));", "parse error"],
  ["new Set<string>()", "const s = new Set<string>(); console.log(String(s.has('x')));", "Uncaught TypeError: Cannot read property of undefined"],
  ["parameter property", "class C { constructor(private v: number) {} get(): string { return String(this.v); } } console.log(new C(3).get());", "undefined"],
];

test("native typescript: porffor's TypeScript defects that tsbundle.mjs works around are still there", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "si-porf-ts-"));
  const porf = join(ROOT, "node_modules", "porffor", "porf");
  try {
    const seen = TS_DEFECTS.map(([name, text], i) => {
      const src = join(dir, `d${i}.ts`);
      writeFileSync(src, text);
      try {
        execFileSync(porf, ["c", src, "-o", join(dir, `d${i}.c`)], { stdio: "ignore" });
      } catch {
        return [name, "parse error"];
      }
      execFileSync("musl-gcc", ["-static", "-O0", "-w", join(dir, `d${i}.c`), "-o", join(dir, `d${i}`), "-lm"]);
      let out: string;
      try {
        out = execFileSync(join(dir, `d${i}`), [], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        out = String((e as { stderr?: string }).stderr);
      }
      return [name, out.trim()];
    });
    t.deepEqual(seen, TS_DEFECTS.map(([name, , expected]) => [name, expected]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
