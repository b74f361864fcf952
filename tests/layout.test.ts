// The folder rules of docs/architecture.md, read from the import statements:
//   lib/       pure helpers; imports only lib/
//   syscalls/  the Kernel seam; imports lib/ and syscalls/
//   runtime/   the init's logic; imports lib/, syscalls/ and runtime/
//   toolchain/ build time; imports lib/, toolchain/ and runtime/module_table.ts (the table format)
//   cli/       the `storage-init` command under Node; imports lib/, syscalls/, runtime/, toolchain/ and cli/
// and nothing the init is compiled from imports Node or a package. The formats of runtime/ (FORMATS)
// import no Kernel and nothing of runtime/ that does I/O. Every module of lib/ and runtime/ has
// its tests/<module>.test.ts.
import test from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import ts from "typescript";
import { ROOT } from "../toolchain/tools.mjs";

const RULES: Record<string, { may: string[]; packages: boolean }> = {
  lib: { may: ["lib/"], packages: false },
  syscalls: { may: ["lib/", "syscalls/"], packages: false },
  runtime: { may: ["lib/", "syscalls/", "runtime/"], packages: false },
  toolchain: { may: ["lib/", "toolchain/", "runtime/module_table.ts"], packages: true },
  cli: { may: ["lib/", "syscalls/", "runtime/", "toolchain/", "cli/"], packages: true },
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

/**
 * The formats: pure functions of bytes or text, their I/O apart (docs/architecture.md). A format
 * imports `may` and other formats; of a module that also does I/O, only the names `parts` lists,
 * which need no Kernel (kernelUsers()). Never syscalls/kernel.ts, not even a type.
 */
const FORMATS = {
  files: [
    "runtime/cmdline.ts",
    "runtime/gpt.ts",
    "runtime/verity.ts",
    "runtime/verity_sig.ts",
    "runtime/erofs.ts",
    "runtime/module_table.ts",
    "runtime/pkcs7.ts",
  ],
  /** lib/, and the build's facts: constants the bundler writes in. */
  may: ["lib/", "runtime/build_facts.ts"],
  parts: {
    /** vpick's version grammar; readVpickDir() reads a directory through the Kernel. */
    "runtime/vpick.ts": ["compareVersions", "versionProblem"],
    /** parseGpt() takes a reader, not a Kernel. */
    "syscalls/files.ts": ["ReadAt"],
  } as Record<string, string[]>,
};

/** The module specifiers a source imports statically and the names it imports from each (undefined: the whole module). */
function namedImports(text: string): Array<{ spec: string; names: string[] | undefined }> {
  const out: Array<{ spec: string; names: string[] | undefined }> = [];
  const source = ts.createSourceFile("x.ts", text, ts.ScriptTarget.ES2022);
  for (const st of source.statements) {
    if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) || st.moduleSpecifier === undefined) continue;
    const spec = (st.moduleSpecifier as ts.StringLiteral).text;
    const bindings = ts.isImportDeclaration(st) ? st.importClause?.namedBindings : st.exportClause;
    const named = bindings !== undefined && (ts.isNamedImports(bindings) || ts.isNamedExports(bindings));
    const whole = ts.isImportDeclaration(st) && st.importClause?.name !== undefined;
    out.push({
      spec,
      names: named && !whole ? bindings.elements.map((e) => (e.propertyName ?? e.name).text) : undefined,
    });
  }
  return out;
}

/** What the formats among `files` import against FORMATS: one line per violation. */
function formatViolations(files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    if (!FORMATS.files.includes(file)) continue;
    for (const { spec, names } of namedImports(text)) {
      if (!spec.startsWith(".")) continue; // packages: RULES
      const target = normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts");
      if (FORMATS.files.includes(target)) continue;
      if (FORMATS.may.some((p) => (p.endsWith("/") ? target.startsWith(p) : target === p))) continue;
      const part = FORMATS.parts[target];
      if (part === undefined || names === undefined) out.push(`${file} (a format) imports ${target}`);
      else for (const n of names) if (!part.includes(n)) out.push(`${file} (a format) imports ${n} from ${target}`);
    }
  }
  return out;
}

/**
 * Which of `names`, top-level declarations of the source `text`, need the Kernel: name the type
 * `Kernel`, themselves or through the file's other top-level declarations they use. A name the
 * file does not declare is returned too.
 */
function kernelUsers(text: string, names: string[]): string[] {
  const source = ts.createSourceFile("x.ts", text, ts.ScriptTarget.ES2022, true);
  const declared = new Map<string, ts.Node>();
  for (const st of source.statements) {
    if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) declared.set(d.name.text, d);
    } else if (
      (ts.isFunctionDeclaration(st) ||
        ts.isClassDeclaration(st) ||
        ts.isInterfaceDeclaration(st) ||
        ts.isTypeAliasDeclaration(st)) &&
      st.name !== undefined
    )
      declared.set(st.name.text, st);
  }
  const needs = (name: string, seen: Set<string>): boolean => {
    const node = declared.get(name);
    if (node === undefined || seen.has(name)) return false;
    seen.add(name);
    let found = false;
    const visit = (n: ts.Node): void => {
      if (ts.isIdentifier(n) && (n.text === "Kernel" || needs(n.text, seen))) found = true;
      else ts.forEachChild(n, visit);
    };
    ts.forEachChild(node, visit);
    return found;
  };
  return names.filter((n) => !declared.has(n) || needs(n, new Set()));
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

test("formatViolations() names a format's import of the Kernel, of a module with I/O, and of a part not listed", (t) => {
  const files = new Map([
    [
      "runtime/gpt.ts",
      'import type { Kernel } from "../syscalls/kernel.js";\nimport type { ReadAt } from "../syscalls/files.js";\n',
    ],
    ["runtime/verity.ts", 'import type { Log } from "./log.js";\nimport { crc32 } from "../lib/crc32.js";\n'],
    [
      "runtime/cmdline.ts",
      'import { compareVersions, readVpickDir } from "./vpick.js";\nimport { BUILD_POLICY } from "./build_facts.js";\n',
    ],
    ["runtime/erofs.ts", 'import * as vpick from "./vpick.js";\nexport { parseGpt } from "./gpt.js";\n'],
    ["runtime/ddi.ts", 'import type { Kernel } from "../syscalls/kernel.js";\n'],
  ]);
  t.deepEqual(formatViolations(files), [
    "runtime/gpt.ts (a format) imports syscalls/kernel.ts",
    "runtime/verity.ts (a format) imports runtime/log.ts",
    "runtime/cmdline.ts (a format) imports readVpickDir from runtime/vpick.ts",
    "runtime/erofs.ts (a format) imports runtime/vpick.ts",
  ]);
});

test("kernelUsers() finds the Kernel in a declaration and in the declarations it uses", (t) => {
  const text = [
    'import type { Kernel } from "../syscalls/kernel.js";',
    "const LIMIT = 3;",
    "function count(s: string): number { return s.length > LIMIT ? LIMIT : s.length; }",
    "export function pure(s: string): number { return count(s); }",
    "function list(k: Kernel, dir: string): string[] { return k.readdir(dir); }",
    "export function reads(dir: string, k: unknown): number { return list(k as never, dir).length; }",
  ].join("\n");
  t.deepEqual(kernelUsers(text, ["pure", "LIMIT", "list", "reads", "gone"]), ["list", "reads", "gone"]);
});

test("imports: the formats import no Kernel and nothing of runtime/ that does I/O", (t) => {
  const files = new Map<string, string>();
  for (const f of FORMATS.files) files.set(f, readFileSync(join(ROOT, f), "utf8"));
  t.deepEqual(formatViolations(files), []);
  for (const [file, names] of Object.entries(FORMATS.parts))
    t.deepEqual(kernelUsers(readFileSync(join(ROOT, file), "utf8"), names), [], `${file}: ${names.join(", ")}`);
});

test("tests/: every module of lib/ and runtime/ has its <module>.test.ts", (t) => {
  // runtime/init.ts is the native entry point: tests/boot.test.ts runs it.
  const missing = [...sources("lib"), ...sources("runtime")]
    .filter((f) => f !== join("runtime", "init.ts"))
    .map((f) => join("tests", relative(dirname(f), f).replace(/\.ts$/, ".test.ts")))
    .filter((f) => !existsSync(join(ROOT, f)));
  t.deepEqual(missing, []);
});
