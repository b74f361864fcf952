// toolchain/porffor/defects.ts against the code: every `porffor: <id>` tag names an entry, and
// every entry whose workaround lives in the code is tagged where it does.
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { PORFFOR_DEFECTS } from "../../toolchain/porffor/defects.js";
import { ROOT } from "../../toolchain/tools.mjs";

const REGISTRY = join("toolchain", "porffor", "defects.ts");
const TAG = /porffor: ([a-z0-9]+(?:-[a-z0-9]+)*)/g;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (/\.(ts|mjs|h|c)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** id -> the places that carry its tag, "file:line". */
function tags(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const all = ["lib", "syscalls", "runtime", "toolchain", "tests", "qemu"]
    .flatMap(files)
    .filter((f) => f !== REGISTRY && !f.startsWith(join("tests", "toolchain")));
  for (const f of all) {
    readFileSync(join(ROOT, f), "utf8")
      .split("\n")
      .forEach((line, i) => {
        for (const m of line.matchAll(TAG))
          found.set(m[1], [...(found.get(m[1]) ?? []), `${relative(ROOT, join(ROOT, f))}:${i + 1}`]);
      });
  }
  return found;
}

test("PORFFOR_DEFECTS: every id once, each with its probe and workaround", (t) => {
  const ids = PORFFOR_DEFECTS.map((d) => d.id);
  t.is(new Set(ids).size, ids.length);
  for (const d of PORFFOR_DEFECTS) {
    t.regex(d.id, /^[a-z0-9]+(-[a-z0-9]+)*$/);
    t.true(d.what.length > 10 && d.workaround.length > 10, d.id);
    t.is("source" in d.probe, d.kind !== "runtime", `${d.id}: a ${d.kind} probe`);
  }
});

test("porffor: tags: every tag names a defect, and every defect with a workaround in the code is tagged", (t) => {
  const found = tags();
  const known = new Set(PORFFOR_DEFECTS.map((d) => d.id));
  t.deepEqual(
    [...found.entries()].filter(([id]) => !known.has(id)),
    [],
    "tags that name no entry",
  );
  t.deepEqual(
    PORFFOR_DEFECTS.filter((d) => d.tagged && !found.has(d.id)).map((d) => d.id),
    [],
    "entries without a tagged site",
  );
  t.deepEqual(
    PORFFOR_DEFECTS.filter((d) => !d.tagged && found.has(d.id)).map((d) => `${d.id} at ${found.get(d.id)}`),
    [],
    "entries said to have no site, with one",
  );
});

test("tsconfig.json keeps erasableSyntaxOnly, which the bundler relies on (porffor's parser misreads parameter properties)", (t) => {
  const read = ts.readConfigFile(join(ROOT, "tsconfig.json"), ts.sys.readFile);
  t.is(read.config.compilerOptions.erasableSyntaxOnly, true);
});

test("docs/porffor.md has one row for each defect, with its kind and workaround", (t) => {
  const doc = readFileSync(join(ROOT, "docs", "porffor.md"), "utf8");
  const rows = doc.split("\n").filter((l) => /^\| `[a-z0-9-]+` \|/.test(l));
  t.deepEqual(
    rows.map((r) => r.split("|")[1].trim().slice(1, -1)),
    PORFFOR_DEFECTS.map((d) => d.id),
  );
  for (const [i, d] of PORFFOR_DEFECTS.entries()) {
    const cells = rows[i].split(/(?<!\\)\|/).map((c) => c.trim().split("\\|").join("|"));
    t.deepEqual(cells.slice(2, 6), [d.kind, d.what, d.workaround, d.bundler ?? ""], d.id);
  }
});
