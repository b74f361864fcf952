// build.mjs: the rewrite of porffor's C output. The patterns are porffor internals; these tests
// pin what is rewritten and that a compiler whose output lacks them stops the build.
import test from "ava";
import { join } from "node:path";

const ROOT = process.cwd();
const { tunePorfforC, GC_NURSERY_BYTES } = (await import(join(ROOT, "build.mjs"))) as {
  tunePorfforC: (c: string) => string;
  GC_NURSERY_BYTES: number;
};

const HEADER = "#define PORF_GC_NURSERY_BYTES 33554432u\njsval p167___Porffor_object_get_ic(jsval, jsval, i32, i32);\n";
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
  t.regex(out, /get_ic\(jsval, jsval, i32, i32\);\nstatic jsval porf_checked_get\([^]*if \(porf_jv_type\(o\) == 0\) porf_throw_new\(errType, msg\);\n  return p167___Porffor_object_get_ic\(o, key, hash, slot\);/);
});

test("tunePorfforC() leaves a check on another variable than the one read as it is", (t) => {
  const other = READ.replace("porf_jv_type(m)", "porf_jv_type(n)");
  t.true(tunePorfforC(HEADER + other + READ).includes(other));
});

test("tunePorfforC() stops the build when porffor's output changed", (t) => {
  t.throws(() => tunePorfforC(READ), { message: /no PORF_GC_NURSERY_BYTES define/ });
  const changed = HEADER + READ.replace("porf_throw_new(39, 2096u);", "porf_throw_undefined(2096u);");
  t.throws(() => tunePorfforC(changed), { message: /reads properties in a new way/ });
  t.notThrows(() => tunePorfforC("#define PORF_GC_NURSERY_BYTES 1u\nint main(void) { return 0; }\n"), "a program without property reads");
});
