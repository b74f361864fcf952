// Edits of the C that porffor writes, in one table. Each edit names how often its pattern must
// occur: the patterns are porffor internals, so output that does not match stops the build here,
// and a compiler upgrade is looked at instead of silently giving a slower or larger init.
// Why each edit is worth making is in docs/porffor.md; tests/toolchain/c_edits.test.ts runs them on real
// porffor output.

/**
 * porffor's garbage collector bump-allocates through a 32 MiB nursery before its first minor
 * collection, so a short-lived PID 1 touches fresh pages for everything it ever allocates. A
 * nursery that holds all a boot allocates means no collection runs, and the collector's code is
 * never translated under QEMU's TCG. A boot that allocates more collects as usual.
 */
export const GC_NURSERY_BYTES = 2 << 20;

/** log2 of the heap arena's reservation (below). */
export const ARENA_SHIFT = 28;

/**
 * `{ what, from, to, expect }`: `from` a RegExp, `to` its replacement (string or function),
 * `expect` "once" (exactly one match) or "any" (none is fine: a program may have no such site).
 * An edit with `declare` also gets a C definition inserted after the declaration it matches.
 */
export const PORFFOR_C_EDITS = [
  {
    what: "the GC nursery",
    from: /#define PORF_GC_NURSERY_BYTES \d+u/,
    to: `#define PORF_GC_NURSERY_BYTES ${GC_NURSERY_BYTES}u`,
    expect: "once",
  },
  // The heap arena: porffor reserves address space without access and makes each MiB writable as
  // the heap grows, and it maps its collector's side tables, sized by the reservation, writable
  // at start-up. Under strict overcommit (vm.overcommit_memory=2, which ignores MAP_NORESERVE) a
  // writable mapping is charged in full when it is made, so a 4 GiB reservation's side tables
  // can exhaust the commit limit before the init runs a line. The init allocates little:
  // a 256 MiB reservation keeps that charge small and is still far more than a boot needs.
  {
    what: "the arena's size",
    from: /#define PORF_ARENA_RESERVE \(1ull << 32\)/,
    to: `#define PORF_ARENA_RESERVE (1ull << ${ARENA_SHIFT})`,
    expect: "once",
  },
  // With the smaller arena the collector's side tables cover offsets below 2^ARENA_SHIFT only,
  // but its test of whether a value is a heap block indexes them with any positive i32 it
  // meets (a conservative root, an array slot): bounded here by the arena, as the 4 GiB
  // reservation bounded it before.
  {
    what: "the heap-block test's bound",
    from: /return body > 0 && porf_gc_bit\(PORF_GC_B_ALLOC, porf_gc_gran\(body\)\) != 0u;/,
    to: "return body > 0 && (u64)body < PORF_ARENA_RESERVE && porf_gc_bit(PORF_GC_B_ALLOC, porf_gc_gran(body)) != 0u;",
    expect: "once",
  },
  // A property read `o.k` compiles to "if o is undefined, throw a TypeError, else look k up in
  // o's inline cache", written out at each of several hundred sites. One function with the same
  // test and the same call keeps it once. Exact: o is a C local, read twice either way.
  {
    what: "checked property reads",
    from: /if \(porf_jv_type\((\w+)\) == 0\) \{\s*porf_throw_new\((\d+), (\d+)u\);\s*\} else \{\s*(\w+) = (p\d+___Porffor_object_get_ic)\(\1, ([^;{}]*)\);\s*\}/g,
    to: (_m, obj, errType, msg, out, _fn, rest) => `${out} = porf_checked_get(${obj}, ${rest}, ${errType}, ${msg}u);`,
    expect: "any",
    declare: {
      /** The declaration of the function the matches called (the fifth group). */
      of: (m) => new RegExp(`jsval ${m[5]}\\(jsval, jsval, i32, i32\\);`),
      define: (m) => `
static jsval porf_checked_get(jsval o, jsval key, i32 hash, i32 slot, i32 errType, u32 msg) {
  if (porf_jv_type(o) == 0) porf_throw_new(errType, msg);
  return ${m[5]}(o, key, hash, slot);
}`,
    },
  },
];

/** Applies PORFFOR_C_EDITS to porffor's C output; throws, naming the edit, when porffor changed. */
export function tunePorfforC(text) {
  for (const e of PORFFOR_C_EDITS) {
    const global = new RegExp(e.from.source, "g");
    const matches = [...text.matchAll(global)];
    if (e.expect === "once" && matches.length !== 1) {
      throw new Error(
        `porffor's C has ${matches.length} places for ${e.what} (expected 1); porffor changed, re-check PORFFOR_C_EDITS in toolchain/porffor/c_edits.mjs`,
      );
    }
    if (matches.length === 0) continue;
    text = text.replace(global, e.to);
    if (e.declare) {
      const decl = e.declare.of(matches[0]);
      if (!decl.test(text))
        throw new Error(
          `porffor's C declares what ${e.what} call differently; porffor changed, re-check PORFFOR_C_EDITS in toolchain/porffor/c_edits.mjs`,
        );
      text = text.replace(decl, (d) => d + e.declare.define(matches[0]));
    }
  }
  return text;
}
