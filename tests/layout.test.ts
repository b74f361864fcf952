// The folder rules of docs/architecture.md, read from the import statements:
//   lib/       pure helpers; imports only lib/
//   syscalls/  the Kernel seam; imports lib/ and syscalls/
//   runtime/   the init's logic; imports lib/, syscalls/ and runtime/
//   toolchain/ build time; imports lib/, toolchain/ and runtime/module_table.ts (the table format)
//   cli/       `storage-init check` under Node; imports lib/, syscalls/, runtime/ and cli/
// and nothing the init is compiled from imports Node or a package. Every module of lib/ and
// runtime/ has its tests/<module>.test.ts.
import test from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { ROOT } from "../toolchain/tools.mjs";

const RULES: Record<string, { may: string[]; packages: boolean }> = {
  lib: { may: ["lib/"], packages: false },
  syscalls: { may: ["lib/", "syscalls/"], packages: false },
  runtime: { may: ["lib/", "syscalls/", "runtime/"], packages: false },
  toolchain: { may: ["lib/", "toolchain/", "runtime/module_table.ts"], packages: true },
  cli: { may: ["lib/", "syscalls/", "runtime/", "cli/"], packages: true },
};

/** The module specifiers a source imports (static, re-exports and dynamic). */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(
    /^\s*(?:import|export)\b[^"';]*?from\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm,
  )) {
    out.push(m[1] ?? m[2] ?? m[3]);
  }
  return out;
}

/** What `files` (path relative to ROOT -> text) import against RULES: one line per violation. */
function violations(files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    const rule = RULES[file.split("/")[0]];
    if (!rule) continue;
    for (const spec of importsOf(text)) {
      if (!spec.startsWith(".")) {
        if (!rule.packages) out.push(`${file} imports ${spec}`);
        continue;
      }
      const target = normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts");
      if (!rule.may.some((p) => (p.endsWith("/") ? target.startsWith(p) : target === p)))
        out.push(`${file} imports ${target}`);
    }
  }
  return out;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

test("violations() names an import across the folder rules, and a package in the init", (t) => {
  const files = new Map([
    ["lib/x.ts", 'import { quote } from "./quote.js";\nimport { Kernel } from "../syscalls/kernel.js";\n'],
    ["syscalls/y.ts", 'import { readFileSync } from "node:fs";\n'],
    ["runtime/z.ts", 'import { boot } from "./main.js";\nconst m = await import("../toolchain/native.mjs");\n'],
    [
      "toolchain/w.mjs",
      'import ts from "typescript";\nimport { parseGpt } from "../runtime/gpt.ts";\nimport { TABLE_MAGIC } from "../runtime/module_table.ts";\n',
    ],
  ]);
  t.deepEqual(violations(files), [
    "lib/x.ts imports syscalls/kernel.ts",
    "syscalls/y.ts imports node:fs",
    "runtime/z.ts imports toolchain/native.mjs",
    "toolchain/w.mjs imports runtime/gpt.ts",
  ]);
});

test("imports: lib/, syscalls/, runtime/ and toolchain/ import only what their folder may", (t) => {
  const files = new Map<string, string>();
  for (const dir of Object.keys(RULES)) for (const f of sources(dir)) files.set(f, readFileSync(join(ROOT, f), "utf8"));
  t.true(files.size > 40, `${files.size} sources read`);
  t.deepEqual(violations(files), []);
});

test("tests/: every module of lib/ and runtime/ has its <module>.test.ts", (t) => {
  // runtime/init.ts is the native entry point: tests/boot.test.ts runs it.
  const missing = [...sources("lib"), ...sources("runtime")]
    .filter((f) => f !== join("runtime", "init.ts"))
    .map((f) => join("tests", relative(dirname(f), f).replace(/\.ts$/, ".test.ts")))
    .filter((f) => !existsSync(join(ROOT, f)));
  t.deepEqual(missing, []);
});
