// `npm run mutate [module ...]`: StrykerJS over the init's modules, each against its own unit
// tests, and those that decide what boots against the whole boots over FakeKernel too. Stryker's
// command runner runs ava once per mutant, stopping at the first failure. The tests over
// thousands of random or mutated inputs ("on 10,000 mutated ...", "boot() over 2,000 ...") are
// left out: instrumented by Stryker, one takes 20 s. A score here is a floor.
// Writes reports/mutation/<module>.json (Stryker's schema) and prints, per module, the counts,
// the score and every surviving mutant. `--again` retests only the lines where mutants survived
// in that report (the module's source unchanged since), and merges what it finds into it.
// Not part of `npm test`: docs/mutation.md gives the times.
import { Stryker } from "@stryker-mutator/core";
import type { LogLevel, MutantResult } from "@stryker-mutator/api/core";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

const WHOLE_BOOT = ["tests/main.test.ts", "tests/root_search.test.ts"];

/**
 * Module → the test files run against its mutants, its own first. Parsers of the disk's bytes
 * and the command line go against their own tests; the modules that decide what boots, against
 * the whole boots as well.
 */
export const MUTATED: Record<string, string[]> = {
  "runtime/cmdline.ts": ["tests/cmdline.test.ts"],
  "runtime/verity.ts": ["tests/verity.test.ts"],
  "runtime/verity_sig.ts": ["tests/verity_sig.test.ts"],
  "lib/root_hash.ts": ["tests/root_hash.test.ts", "tests/cmdline.test.ts", "tests/verity_sig.test.ts"],
  "runtime/pkcs7.ts": ["tests/pkcs7.test.ts"],
  "runtime/gpt.ts": ["tests/gpt.test.ts"],
  "runtime/vpick.ts": ["tests/vpick.test.ts"],
  "runtime/ddi.ts": ["tests/ddi.test.ts", "tests/root_device.test.ts", ...WHOLE_BOOT],
  "runtime/root_device.ts": ["tests/root_device.test.ts", ...WHOLE_BOOT],
  "runtime/esp.ts": ["tests/esp.test.ts", ...WHOLE_BOOT],
  "runtime/switch_root.ts": ["tests/switch_root.test.ts", "tests/main.test.ts"],
  "runtime/root_search.ts": WHOLE_BOOT,
  "runtime/main.ts": ["tests/main.test.ts"],
};

/** What a mutant is, in Stryker's report and in its results alike. */
interface Mutant {
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number }; end: { line: number } };
}

interface Report {
  files: { [module: string]: { source: string; mutants: Mutant[] } };
}

const COUNTED = ["Killed", "Timeout", "Survived", "NoCoverage"] as const;

function commandFor(tests: readonly string[]): string {
  // ava's own timeout ends a mutant that loops: it kills its worker, which a timeout of Stryker's
  // (the longer one) would leave running.
  return [
    "node node_modules/ava/entrypoints/cli.mjs --fail-fast --concurrency 1 --timeout 15s",
    "--match '!*,000 *'",
    ...tests,
  ].join(" ");
}

function reportFile(module: string): string {
  return `reports/mutation/${module.replace(/^.*\//, "").replace(/\.ts$/, "")}.json`;
}

async function stryker(mutate: string[], tests: readonly string[], report: string): Promise<MutantResult[]> {
  return new Stryker({
    mutate,
    testRunner: "command",
    commandRunner: { command: commandFor(tests) },
    coverageAnalysis: "off",
    timeoutMS: 30000,
    checkers: [],
    concurrency: 2,
    reporters: ["json", "progress"],
    jsonReporter: { fileName: report },
    ignorePatterns: [".cache", "dist", ".build", "reports", "qemu/out"],
    tempDirName: ".stryker-tmp",
    cleanTempDir: "always",
    logLevel: "warn" as LogLevel,
  }).runMutationTest();
}

const sameMutant = (a: Mutant, b: Mutant) =>
  a.mutatorName === b.mutatorName &&
  a.replacement === b.replacement &&
  a.location.start.line === b.location.start.line &&
  a.location.start.column === b.location.start.column;

const left = (m: Mutant) => m.status === "Survived" || m.status === "NoCoverage";

/** The module's mutants: all of them anew, or with `again`, the lines where some survived, merged into the last report. */
async function mutate(module: string, tests: readonly string[], again: boolean): Promise<readonly Mutant[]> {
  const file = reportFile(module);
  if (!again) return stryker([module], tests, file);
  if (!existsSync(file)) throw new Error(`mutate --again: no report ${file}; run the module whole first`);
  const report = JSON.parse(readFileSync(file, "utf8")) as Report;
  const last = report.files[module];
  if (last.source !== readFileSync(module, "utf8"))
    throw new Error(`mutate --again: ${module} changed since ${file}; run it whole`);
  // A range takes the mutants wholly inside it: a block's runs to its last line.
  const ranges = [...new Set(last.mutants.filter(left).map((m) => `${m.location.start.line}-${m.location.end.line}`))];
  if (ranges.length === 0) return last.mutants;
  const retested = await stryker(
    ranges.map((r) => `${module}:${r}`),
    tests,
    file.replace(/\.json$/, ".again.json"),
  );
  for (const m of last.mutants) {
    const now = retested.find((r) => sameMutant(r, m));
    if (now !== undefined) m.status = now.status;
  }
  writeFileSync(file, JSON.stringify(report));
  return last.mutants;
}

function summary(module: string, results: readonly Mutant[], seconds: number): string {
  const count = (status: string) => results.filter((r) => r.status === status).length;
  const counted = COUNTED.reduce((n, s) => n + count(s), 0);
  const detected = count("Killed") + count("Timeout");
  const score = counted === 0 ? 100 : (100 * detected) / counted;
  const head =
    `${module}: ${results.length} mutants, ${count("Killed")} killed, ${count("Timeout")} timed out, ` +
    `${count("Survived")} survived, ${count("NoCoverage")} not covered, ` +
    `${count("CompileError") + count("RuntimeError")} errors; score ${score.toFixed(1)}% in ${Math.round(seconds)} s`;
  const survivors = results
    .filter(left)
    .sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column)
    .map(
      (r) =>
        `  ${module}:${r.location.start.line}:${r.location.start.column} ${r.mutatorName}: ${oneLine(r.replacement)}`,
    );
  return [head, ...survivors].join("\n");
}

function oneLine(text: string | undefined): string {
  const flat = (text ?? "").replace(/\s+/g, " ");
  return flat.length > 100 ? `${flat.slice(0, 97)}...` : flat;
}

const again = process.argv.includes("--again");
const wanted = process.argv
  .slice(2)
  .filter((a) => a !== "--again")
  .map((m) => (m.includes("/") ? m : `runtime/${m.replace(/\.ts$/, "")}.ts`));
for (const m of wanted) {
  if (MUTATED[m] === undefined)
    throw new Error(`mutate: no test list for ${m}; known: ${Object.keys(MUTATED).join(", ")}`);
}
mkdirSync("reports/mutation", { recursive: true });
const lines: string[] = [];
for (const module of wanted.length > 0 ? wanted : Object.keys(MUTATED)) {
  const started = Date.now();
  const results = await mutate(module, MUTATED[module], again);
  const text = summary(module, results, (Date.now() - started) / 1000);
  console.log(text);
  lines.push(text);
}
writeFileSync("reports/mutation/summary.txt", lines.join("\n") + "\n");
