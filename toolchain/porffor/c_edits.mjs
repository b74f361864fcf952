// Edits of the C that porffor writes, in one table. Each edit names how often its pattern must
// occur: the patterns are porffor internals, so output that does not match stops the build here,
// and a compiler upgrade is looked at instead of silently giving a slower or larger init.
// Why each edit is worth making is in docs/porffor.md; tests/build.test.ts runs them on real
// porffor output.

/**
 * porffor's garbage collector bump-allocates through a 32 MiB nursery before its first minor
 * collection, so a short-lived PID 1 touches fresh pages for everything it ever allocates. A
 * nursery that holds all a boot allocates means no collection runs, and the collector's code is
 * never translated under QEMU's TCG. A boot that allocates more collects as usual.
 */
export const GC_NURSERY_BYTES = 2 << 20;

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
  // The heap arena: porffor reserves 4 GiB without access and makes each MiB readable and writable
  // as the heap grows, one mprotect() each. Mapped readable and writable from the start with
  // MAP_NORESERVE instead, as porffor maps its collector's side tables: pages cost memory only
  // when touched, and nothing is decommitted, which a short-lived PID 1 never needs.
  {
    what: "the arena's protection",
    from: /#define PORF_MMAP_RESERVE_PROT PROT_NONE\n#define PORF_CAN_DECOMMIT 1\n/,
    to: "#define PORF_MMAP_RESERVE_PROT (PROT_READ | PROT_WRITE)\n#define PORF_CAN_DECOMMIT 0\n",
    expect: "once",
  },
  {
    what: "the arena's mapping",
    from: /(void\* got = mmap\(PORF_ARENA_HINT, PORF_ARENA_RESERVE, PORF_MMAP_RESERVE_PROT,\s*MAP_PRIVATE \| MAP_ANONYMOUS)(, -1, 0\);)/,
    to: "$1 | MAP_NORESERVE$2",
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
