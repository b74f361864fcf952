// `npm run mutate [module ...]`: StrykerJS over the init's modules, each against the unit tests
// that exercise it (its own test file first, then the whole boots over FakeKernel). Stryker's
// command runner runs ava once per mutant, stopping at the first failure; the whole-boot fuzz
// ("boot() over ...") is left out of these runs for time, so a score here is a floor.
// Writes reports/mutation/<module>.json (Stryker's schema) and prints, per module, the counts,
// the score and every surviving mutant. Not part of `npm test`: docs/mutation.md gives the times.
import { Stryker } from "@stryker-mutator/core";
import type { LogLevel, MutantResult } from "@stryker-mutator/api/core";
import { mkdirSync, writeFileSync } from "node:fs";

const WHOLE_BOOT = ["tests/main.test.ts", "tests/root_search.test.ts"];

/** Module → the test files run against its mutants, cheapest and most direct first. */
export const MUTATED: Record<string, string[]> = {
  "runtime/cmdline.ts": ["tests/cmdline.test.ts", ...WHOLE_BOOT],
  "runtime/ddi.ts": ["tests/ddi.test.ts", "tests/root_device.test.ts", ...WHOLE_BOOT],
  "runtime/verity.ts": ["tests/verity.test.ts", ...WHOLE_BOOT],
  "runtime/verity_sig.ts": ["tests/verity_sig.test.ts", ...WHOLE_BOOT],
  "runtime/pkcs7.ts": ["tests/pkcs7.test.ts", "tests/verity_sig.test.ts"],
  "runtime/root_device.ts": ["tests/root_device.test.ts", ...WHOLE_BOOT],
  "runtime/gpt.ts": ["tests/gpt.test.ts", "tests/ddi.test.ts", "tests/esp.test.ts", ...WHOLE_BOOT],
  "runtime/esp.ts": ["tests/esp.test.ts", ...WHOLE_BOOT],
  "runtime/vpick.ts": ["tests/vpick.test.ts", ...WHOLE_BOOT],
  "runtime/switch_root.ts": ["tests/switch_root.test.ts", "tests/main.test.ts"],
  "runtime/root_search.ts": WHOLE_BOOT,
  "runtime/main.ts": ["tests/main.test.ts"],
};

const COUNTED = ["Killed", "Timeout", "Survived", "NoCoverage"] as const;

function commandFor(tests: readonly string[]): string {
  return [
    "node node_modules/ava/entrypoints/cli.mjs --fail-fast --concurrency 1",
    "--match '!boot() over*'",
    ...tests,
  ].join(" ");
}

async function mutate(module: string, tests: readonly string[]): Promise<MutantResult[]> {
  const name = module.replace(/^.*\//, "").replace(/\.ts$/, "");
  return new Stryker({
    mutate: [module],
    testRunner: "command",
    commandRunner: { command: commandFor(tests) },
    coverageAnalysis: "off",
    checkers: [],
    concurrency: 2,
    reporters: ["json", "progress"],
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
    ignorePatterns: [".cache", "dist", ".build", "reports", "qemu/out"],
    tempDirName: ".stryker-tmp",
    cleanTempDir: "always",
    logLevel: "warn" as LogLevel,
  }).runMutationTest();
}

function summary(module: string, results: readonly MutantResult[], seconds: number): string {
  const count = (status: string) => results.filter((r) => r.status === status).length;
  const counted = COUNTED.reduce((n, s) => n + count(s), 0);
  const detected = count("Killed") + count("Timeout");
  const score = counted === 0 ? 100 : (100 * detected) / counted;
  const head =
    `${module}: ${results.length} mutants, ${count("Killed")} killed, ${count("Timeout")} timed out, ` +
    `${count("Survived")} survived, ${count("NoCoverage")} not covered, ` +
    `${count("CompileError") + count("RuntimeError")} errors; score ${score.toFixed(1)}% in ${Math.round(seconds)} s`;
  const left = results
    .filter((r) => r.status === "Survived" || r.status === "NoCoverage")
    .sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column)
    .map(
      (r) =>
        `  ${module}:${r.location.start.line}:${r.location.start.column + 1} ${r.mutatorName}: ${oneLine(r.replacement)}`,
    );
  return [head, ...left].join("\n");
}

function oneLine(text: string | undefined): string {
  const flat = (text ?? "").replace(/\s+/g, " ");
  return flat.length > 100 ? `${flat.slice(0, 97)}...` : flat;
}

const wanted = process.argv.slice(2).map((m) => (m.includes("/") ? m : `runtime/${m.replace(/\.ts$/, "")}.ts`));
for (const m of wanted) {
  if (MUTATED[m] === undefined)
    throw new Error(`mutate: no test list for ${m}; known: ${Object.keys(MUTATED).join(", ")}`);
}
mkdirSync("reports/mutation", { recursive: true });
const lines: string[] = [];
for (const module of wanted.length > 0 ? wanted : Object.keys(MUTATED)) {
  const started = Date.now();
  const results = await mutate(module, MUTATED[module]);
  const text = summary(module, results, (Date.now() - started) / 1000);
  console.log(text);
  lines.push(text);
}
writeFileSync("reports/mutation/summary.txt", lines.join("\n") + "\n");
