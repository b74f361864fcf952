// toolchain/tsbundle: the typed bundle porffor compiles. Fixture modules are bundled, the bundle is
// transpiled and run under Node, and must print exactly what the modules print when esbuild
// bundles them; the bundle must hold nothing porffor's TypeScript parser misreads.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import ts from "typescript";
import { buildDefines } from "../../toolchain/native.mjs";
import { ROOT } from "../../toolchain/tools.mjs";
import { bundleTypeScript } from "../../toolchain/tsbundle/bundle.mjs";

const TSCONFIG = JSON.stringify({
  compilerOptions: {
    target: "ES2022",
    module: "ES2022",
    moduleResolution: "bundler",
    strict: true,
    erasableSyntaxOnly: true,
    lib: ["ES2020"],
    noEmit: true,
  },
});

/** Writes the fixture modules into a fresh directory with a strict tsconfig. */
function fixture(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "si-tsbundle-"));
  writeFileSync(join(dir, "tsconfig.json"), TSCONFIG);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function runJs(js: string, dir: string): string {
  const file = join(dir, `run-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, js);
  return execFileSync(process.execPath, [file], { encoding: "utf8" });
}

async function viaEsbuild(dir: string, defines: Record<string, string>): Promise<string> {
  const r = await build({
    entryPoints: [join(dir, "main.ts")],
    bundle: true,
    format: "esm",
    write: false,
    logLevel: "silent",
    define: Object.fromEntries(Object.entries(defines).map(([k, v]) => [k, JSON.stringify(v)])),
  });
  return runJs(r.outputFiles[0].text, dir);
}

function viaBundle(dir: string, defines: Record<string, string>): { out: string; bundle: string } {
  const bundle = bundleTypeScript(join(dir, "main.ts"), { tsconfig: join(dir, "tsconfig.json"), defines });
  const js = ts.transpileModule(bundle, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 },
  }).outputText;
  return { out: runJs(js, dir), bundle };
}

/** Every binary operator in the text, by token. */
function operators(text: string): Set<ts.SyntaxKind> {
  const sf = ts.createSourceFile("b.ts", text, ts.ScriptTarget.ES2022, true);
  const seen = new Set<ts.SyntaxKind>();
  const walk = (n: ts.Node): void => {
    if (ts.isBinaryExpression(n)) seen.add(n.operatorToken.kind);
    ts.forEachChild(n, walk);
  };
  walk(sf);
  return seen;
}

const MODULES = {
  "a.ts": `
export const Flags = { A: 1 << 3, B: 1 << 31, C: 0x10 | 2, NAME: "flag" };
export const LIMIT = 40 + 2;
export const PREFIX = "p" + LIMIT;
export function shl8(v: number): number { return v << 8; }
export function shl31(v: number): number { return v << 31; }
export function less(a: number | string, b: number | string): boolean { return a < b; }
export function x(): string { return "a.x"; }
export function unused(): string { return "never called"; }
export class Box {
  private readonly v: number;
  label: string;
  constructor(v: number, label: string) { this.v = v; this.label = label; }
  get(): string { return this.label + "=" + this.v; }
}
`,
  "b.ts": `
import { x as ax, Flags, LIMIT } from "./a.js";
export function x(): string { return "b.x+" + ax(); }
export function pairs(xs: number[]): Array<{ v: number; big: boolean }> { return xs.map((v) => ({ v, big: v > LIMIT })); }
export function flags(): number { return Flags.A | Flags.C; }
`,
  "c.ts": `
export function string_slice_1(): string { return "a declaration of its own"; }
export function strings(): string[] {
  const order: string[] = [];
  const s = "Hello, World";
  const pick = (v: string): string => { order.push("receiver"); return v; };
  const at = (n: number): number => { order.push("arg" + n); return n; };
  const label: "a-b" | "cc-d" = s.length > 100 ? "a-b" : "cc-d";
  const maybe: string | undefined = s.length > 100 ? undefined : s;
  const box = { slice: (a: number): string => "box" + a };
  return [s.slice(7), s.slice(0, 5), pick(s).slice(at(1), at(3)), s.toLowerCase(), s.trim(), s.indexOf("o"), s.indexOf("o", 5),
    "lit".charCodeAt(0), label.indexOf("-"), maybe?.slice(1) ?? "", box.slice(2), [1, 2, 3].slice(1).join(","), order.join(","),
    string_slice_1()].map(String);
}
`,
  "main.ts": `
import { strings } from "./c.js";
import { Box, Flags, PREFIX, less, shl31, shl8 } from "./a.js";
import { flags, pairs, x } from "./b.js";
declare const BUILD_ARCH: string;
const out: string[] = [];
for (const v of [0, 1, -1, 255, 0x7fffff, 0xffffff, 1.9, -2.5, 2 ** 40 + 3, NaN]) out.push(shl8(v) + " " + shl31(v));
for (const [a, b] of [[1, 2], [2, 1], [1, 1], [NaN, 1], ["a", "b"], ["10", 9]] as Array<[number | string, number | string]>) out.push(String(less(a, b)));
let n = 0;
for (let i = 0; i < 5; i++) n += i;
const bytes = new Uint8Array(4);
for (let i = 0; i < bytes.length; i++) bytes[i] = i * 3;
const seen = new Set<string>(["x"]);
const first = [7, 8][5];
out.push(x(), String(n), bytes.join(","), String(seen.has("x")), String(first), JSON.stringify(pairs([1, 50])));
out.push(String(-1 << 3), String(-3 << 1), String(1 << 31));
out.push(new Box(3, "box").get(), String(flags()), String(Flags.B), Flags.NAME, PREFIX, BUILD_ARCH);
out.push(...strings());
console.log(out.join("\\n"));
`,
};

test("bundleTypeScript() output runs exactly like the modules it bundles", async (t) => {
  const dir = fixture(MODULES);
  try {
    const defines = { BUILD_ARCH: "x86-64" };
    const expected = await viaEsbuild(dir, defines);
    const { out, bundle } = viaBundle(dir, defines);
    t.is(out, expected);
    t.true(expected.includes("b.x+a.x") && expected.includes("box=3"), expected);
    // What porffor's parser misreads is gone; what porffor compiles to typed C is there.
    const ops = operators(bundle);
    t.false(ops.has(ts.SyntaxKind.LessThanToken), "no `<`");
    t.false(ops.has(ts.SyntaxKind.LessThanLessThanToken), "no `<<`");
    t.notRegex(bundle, /\(\{/, "no parenthesized object literal");
    t.notRegex(bundle, /new Set</, "no type arguments on `new`");
    t.notRegex(bundle, /^\s*(import|export)\b/m);
    t.notRegex(bundle, /never called/, "unused declarations are dropped");
    t.notRegex(bundle, /Flags|LIMIT|PREFIX|BUILD_ARCH/, "constants and defines are inlined");
    t.regex(bundle, /function x_2\(\)/, "the second `x` is renamed");
    t.regex(bundle, /let i: number = 0/);
    t.regex(bundle, /const bytes: Uint8Array = /);
    t.regex(bundle, /const seen: Set<unknown> = /);
    t.regex(bundle, /const first = \[7, 8\]\[5\]/, "an index read is not claimed to be a number");
    // Method calls on strings go through one helper per method and argument count.
    t.true(expected.includes("receiver,arg1,arg3") && expected.includes("box2"), expected);
    t.regex(bundle, /function string_slice_2\(s: string, a0, a1\) \{\s*return s\.slice\(a0, a1\);/);
    t.regex(bundle, /string_slice_2\(pick\(s\), at\(1\), at\(3\)\)/);
    t.regex(bundle, /string_indexOf_1\(label, "-"\)/, "a union of string literals is a string");
    t.regex(bundle, /string_charCodeAt_1\("lit", 0\)/);
    t.regex(bundle, /function string_slice_1_2\(s: string, a0\)/, "a helper's name never takes a declared one");
    t.regex(bundle, /function string_slice_1\(\): string/);
    t.regex(bundle, /maybe\?\.slice\(1\)/, "an optional call is left as written");
    t.regex(bundle, /box\.slice\(2\)/, "a method of another type is left as written");
    t.regex(bundle, /\[1, 2, 3\]\.slice\(1\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bundleTypeScript() refuses what it cannot translate exactly, naming file and line", (t) => {
  const cases: Array<[string, RegExp]> = [
    [
      "let i = 0;\nfunction f(): number { return i++; }\nexport const r = f() < f();\n",
      /main\.ts:3: `<` between operands with side effects/,
    ],
    [
      "export function f(a: number, n: number): number { return a << n; }\nconsole.log(f(1, 2));\n",
      /main\.ts:1: `<<` needs a literal shift count/,
    ],
    ["let v = 1;\nv <<= 2;\nexport const w = v;\n", /main\.ts:2: `<<=` does not parse in porffor/],
    ["export default function f(): number { return 1; }\n", /main\.ts:1: default exports are not bundled/],
    // What porffor compiles into a binary that runs wrongly, refused with its defect's id.
    [
      'export function f(log: string[]): number {\n  try {\n    return 1;\n  } finally {\n    log.push("x");\n  }\n}\n',
      /main\.ts:3: porffor: try-finally-return: /,
    ],
    [
      "class A { m(): number { return 1; } }\nexport class B extends A {\n  m(): number { return super.m(); }\n}\n",
      /main\.ts:3: porffor: super-method: /,
    ],
    ["export class E extends Error {}\n", /main\.ts:1: porffor: extends-error: /],
    [
      "export class C {\n  [Symbol.iterator]() { return [][Symbol.iterator](); }\n}\n",
      /main\.ts:2: porffor: user-iterator: /,
    ],
    [
      "declare function g(): void;\nexport function f(): number {\n  let n = 0;\n  try {\n    n = 1;\n    g();\n  } catch (e) {\n    return n;\n  }\n  return n;\n}\n",
      /main\.ts:8: porffor: try-catch-stale-locals: `n` is assigned in `try` and read in `catch`/,
    ],
  ];
  for (const [text, message] of cases) {
    const dir = fixture({ "main.ts": text });
    try {
      const e = t.throws(() => bundleTypeScript(join(dir, "main.ts"), { tsconfig: join(dir, "tsconfig.json") }));
      t.regex(e?.message ?? "", message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("bundleTypeScript() on the init keeps the init's typed locals and drops build-time code", (t) => {
  const bundle = bundleTypeScript(join(ROOT, "runtime", "init.ts"), {
    tsconfig: join(ROOT, "tsconfig.json"),
    defines: buildDefines(),
  });
  t.notRegex(
    bundle,
    /function parseKernelModules|function buildModuleTable/,
    "modules.dep parsing stays at build time",
  );
  t.notRegex(bundle, /\bOpenFlags\b|\bErrno\b\./, "flag tables are inlined");
  t.false(operators(bundle).has(ts.SyntaxKind.LessThanToken));
  t.true((bundle.match(/: number = /g) ?? []).length > 50, "locals are typed");
});

test("bundleTypeScript() allows what the try rules refuse where it is safe", (t) => {
  const dir = fixture({
    "main.ts": [
      "declare function g(): void;",
      "export function f(): number {",
      "  const held = { n: 0 };",
      "  let before = 2;",
      "  let reset = 0;",
      "  try {",
      "    held.n = 1;",
      "    const inside = 3;",
      "    before = inside;",
      "    reset = 1;",
      "    g();",
      "  } catch (e) {",
      "    reset = 0;",
      "    return held.n;",
      "  }",
      "  return before + reset;",
      "}",
      "",
    ].join("\n"),
  });
  try {
    t.notThrows(() => bundleTypeScript(join(dir, "main.ts"), { tsconfig: join(dir, "tsconfig.json") }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
