// toolchain/porffor/c_edits.mjs: the edits of porffor's C output. The patterns are porffor
// internals; these tests pin what is rewritten and that a compiler whose output lacks them stops
// the build.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ARENA_SHIFT, GC_NURSERY_BYTES, tunePorfforC } from "../../toolchain/porffor/c_edits.mjs";
import { ROOT } from "../../toolchain/tools.mjs";

const RUNTIME = `#define PORF_ARENA_HINT NULL
#define PORF_ARENA_RESERVE (1ull << 26)
#define PORF_ARENA_HINT ((void*)0x400000000ull)
#define PORF_ARENA_RESERVE (1ull << 32)
#define PORF_MMAP_RESERVE_PROT PROT_NONE
#define PORF_CAN_DECOMMIT 1
#define PORF_GC_NURSERY_BYTES 33554432u
static inline int porf_gc_is_block_start(i32 body) {
  return body > 0 && porf_gc_bit(PORF_GC_B_ALLOC, porf_gc_gran(body)) != 0u;
}
`;
const HEADER = RUNTIME + "jsval p167___Porffor_object_get_ic(jsval, jsval, i32, i32);\n";
const READ = `	if (porf_jv_type(m) == 0) {
		porf_throw_new(39, 2096u);
	} else {
		_2366 = p167___Porffor_object_get_ic(m, porf_box(6784u, 195), -1608141738, 2672u + 536);
	}
`;

test("tunePorfforC() sets the GC nursery and reads properties through one checked function", (t) => {
  const out = tunePorfforC(HEADER + "void f(void) {\n" + READ + READ.replace("(m", "(o").replace("(m,", "(o,") + "}\n");
  t.true(out.includes(`#define PORF_GC_NURSERY_BYTES ${GC_NURSERY_BYTES}u`));
  t.true(out.includes("_2366 = porf_checked_get(m, porf_box(6784u, 195), -1608141738, 2672u + 536, 39, 2096u);"), out);
  t.true(out.includes("_2366 = porf_checked_get(o, porf_box(6784u, 195), -1608141738, 2672u + 536, 39, 2096u);"), out);
  t.false(out.includes("porf_throw_new(39, 2096u);\n\t}"), "no site keeps its own check");
  // The function is defined right after the declaration of the lookup it calls.
  t.regex(
    out,
    /get_ic\(jsval, jsval, i32, i32\);\nstatic jsval porf_checked_get\([^]*if \(porf_jv_type\(o\) == 0\) porf_throw_new\(errType, msg\);\n  return p167___Porffor_object_get_ic\(o, key, hash, slot\);/,
  );
});

test("tunePorfforC() leaves a check on another variable than the one read as it is", (t) => {
  const other = READ.replace("porf_jv_type(m)", "porf_jv_type(n)");
  t.true(tunePorfforC(HEADER + other + READ).includes(other));
});

test("tunePorfforC() reserves a smaller heap arena, still without access until used", (t) => {
  const out = tunePorfforC(RUNTIME);
  t.true(out.includes(`#define PORF_ARENA_RESERVE (1ull << ${ARENA_SHIFT})`));
  t.true(out.includes("#define PORF_ARENA_RESERVE (1ull << 26)"), "the wasi branch is left alone");
  t.true(out.includes("#define PORF_MMAP_RESERVE_PROT PROT_NONE\n#define PORF_CAN_DECOMMIT 1\n"));
  t.true(
    out.includes(
      "return body > 0 && (u64)body < PORF_ARENA_RESERVE && porf_gc_bit(PORF_GC_B_ALLOC, porf_gc_gran(body)) != 0u;",
    ),
    "a value past the smaller arena is no heap block: its side tables end there",
  );
});

test("tunePorfforC() edits what porffor writes for a real program", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "si-porf-"));
  try {
    writeFileSync(
      join(dir, "p.ts"),
      "function f(o: { a: number } | undefined): number { return o.a; }\nconsole.log(f({ a: 1 }));\n",
    );
    execFileSync(join(ROOT, "node_modules", "porffor", "porf"), ["c", join(dir, "p.ts"), "-o", join(dir, "p.c")], {
      stdio: "ignore",
    });
    const out = tunePorfforC(readFileSync(join(dir, "p.c"), "utf8"));
    t.true(out.includes(`#define PORF_GC_NURSERY_BYTES ${GC_NURSERY_BYTES}u`));
    t.true(out.includes(`#define PORF_ARENA_RESERVE (1ull << ${ARENA_SHIFT})`));
    t.regex(out, /= porf_checked_get\(o, /, "the read of o.a, which may be undefined, is checked in one place");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tunePorfforC() stops the build when porffor's output changed", (t) => {
  t.throws(() => tunePorfforC(READ), { message: /0 places for the GC nursery/ });
  t.throws(() => tunePorfforC(HEADER.replace("(1ull << 32)", "(1ull << 33)")), {
    message: /0 places for the arena's size/,
  });
  t.throws(() => tunePorfforC(HEADER + HEADER), { message: /2 places for the GC nursery/ });

  t.notThrows(() => tunePorfforC(RUNTIME + "int main(void) { return 0; }\n"), "a program without property reads");
});
