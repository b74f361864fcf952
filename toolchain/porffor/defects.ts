/**
 * What porffor 0.0.0-alpha.7 gets wrong, one entry each: the id that tags every workaround in
 * the code (`porffor: <id>` in a comment at the site), the probe that pins it, and the
 * workaround. tests/native.test.ts runs the probes and fails when porffor's answer changes (a fixed
 * defect's workaround can then go); tests/toolchain/defects.test.ts checks the tags against this
 * list. docs/porffor.md explains them.
 *
 * Runtime probes are lines of tests/native/defects_prog.ts, printed `<id>: <answer>` under Node
 * and natively. Parser and compile probes are programs compiled as written (not through
 * tsbundle): what porffor, gcc or the binary make of them.
 */

export interface PorfforDefect {
  id: string;
  kind: "runtime" | "parser" | "compile" | "crash";
  /** What goes wrong, in a sentence. */
  what: string;
  /** runtime: defects_prog's answer under Node and natively. parser, compile, crash: the program and what porffor, gcc or the binary make of it. */
  probe: { node: string; native: string } | { source: string; native: string };
  /** What the code does instead. */
  workaround: string;
  /** How the bundler enforces the workaround, when it can: "refused" (the build stops at the site) or "rewritten". */
  bundler?: "refused" | "rewritten";
  /** False when the workaround has no site to tag (nothing the code does needs it). */
  tagged: boolean;
}

export const PORFFOR_DEFECTS: PorfforDefect[] = [
  {
    id: "try-finally-return",
    kind: "runtime",
    what: "`return` inside `try` skips the `finally` block",
    probe: { node: "finally ran", native: "finally skipped" },
    workaround: "no `return` inside a `try` that has a `finally`: close in `catch` and after the `try`",
    bundler: "refused",
    tagged: false,
  },
  {
    id: "super-method",
    kind: "runtime",
    what: "`super.m()` loses `this`",
    probe: { node: "derived of base", native: "derived of undefined" },
    workaround: "no `super.m()` calls; a constructor's `super(...)` is fine",
    bundler: "refused",
    tagged: false,
  },
  {
    id: "extends-error",
    kind: "runtime",
    what: "`class X extends Error` leaves `message` undefined",
    probe: { node: "boom", native: "undefined" },
    workaround: "errors derive from the plain class InitError (lib/errors.ts)",
    bundler: "refused",
    tagged: true,
  },
  {
    id: "typedarray-join",
    kind: "runtime",
    what: "TypedArray.prototype.join returns garbage",
    probe: { node: "correct", native: "wrong" },
    workaround: "toHex() (lib/hex.ts) for bytes as text; Array.from(u).join otherwise",
    tagged: true,
  },
  {
    id: "user-iterator",
    kind: "runtime",
    what: "for..of over a user-defined [Symbol.iterator] throws",
    probe: { node: "01", native: "threw" },
    workaround: "no user-defined iterators: arrays, Maps and Sets only",
    bundler: "refused",
    tagged: false,
  },
  {
    id: "json-stringify-wide",
    kind: "runtime",
    what: "JSON.stringify truncates characters above U+00FF",
    probe: { node: "kept", native: "truncated to 0xac" },
    workaround: "quote() (lib/quote.ts) for values in messages; timings.json is written by hand",
    tagged: true,
  },
  {
    id: "tofixed-carry",
    kind: "runtime",
    what: "Number.prototype.toFixed loses the carry: (1.96).toFixed(1) is 1.20",
    probe: { node: "2.0", native: "1.20" },
    workaround: "fixedPoint() and formatMs() (lib/numbers.ts)",
    tagged: true,
  },
  {
    id: "math-round-half",
    kind: "runtime",
    what: "Math.round rounds halves to even: Math.round(0.5) is 0",
    probe: { node: "1", native: "0" },
    workaround: "roundHalfUp() (lib/numbers.ts): Math.floor(x + 0.5)",
    tagged: true,
  },
  {
    id: "try-catch-stale-locals",
    kind: "runtime",
    what: "try/catch is setjmp/longjmp: a local assigned inside `try` reads its old value in `catch` (C11 7.13.2.1)",
    probe: { node: "inside", native: "before" },
    workaround:
      "what a catch block reads lives in an object (`const held = { fd: -1 }`), or is assigned before the `try`; in a function whose try calls much, only its parameters are safe (a local object read garbage after the longjmp at -Oz): the try goes in a small function whose catch reads parameters (runtime/main.ts tryDdi, runtime/root_device.ts verityOrRelease)",
    bundler: "refused",
    tagged: true,
  },
  {
    id: "no-process",
    kind: "runtime",
    what: "there is no `process` global",
    probe: { node: "object", native: "undefined" },
    workaround: "the Kernel interface (syscalls/kernel.ts): argv, environ, getpid",
    tagged: true,
  },
  {
    id: "typedarray-bounds",
    kind: "runtime",
    what: "typed arrays have no bounds checks: reads and writes past the end reach other memory",
    probe: { node: "undefined, 0", native: "42, 7" },
    workaround: "every parser checks offsets against the length before it reads (fuzzed under Node and natively)",
    tagged: true,
  },
  {
    id: "large-integer-text",
    kind: "runtime",
    what: "an integer from 2^53 to 2^64 is written with all its digits, not the shortest that reads back",
    probe: { node: "1152921504606847000", native: "1152921504606846976" },
    workaround: "none needed: no value the init prints gets near 2^53 (parseDecimal takes 15 digits)",
    tagged: false,
  },
  {
    id: "wide-string-compare",
    kind: "runtime",
    what: "`<` and `>` between a string with characters above U+00FF and one without are wrong",
    probe: { node: "true", native: "false" },
    workaround:
      "strings are ordered with Array.prototype.sort, and characters compared as code units (charCodeAt), never with `<` on strings",
    tagged: true,
  },
  {
    id: "bitwise-not-wide",
    kind: "runtime",
    what: "`~x` is wrong for a number outside the int32 range (0x80000000 and up): `~0xffffffff` is 2147483648, not 0",
    probe: { node: "0", native: "2147483648" },
    workaround:
      "`x ^ 0xffffffff` where `x` may be an unsigned 32-bit word: XOR converts as JavaScript does (lib/sha256.ts)",
    tagged: true,
  },
  {
    id: "parser-less-than",
    kind: "parser",
    what: "every `<` starts type arguments: `a < b` does not parse",
    probe: { source: "const a = 1; const b = 2; console.log(a < b ? 'yes' : 'no');", native: "parse error" },
    workaround: "tsbundle writes `b > a` (operands free of effects only; others are refused)",
    bundler: "rewritten",
    tagged: true,
  },
  {
    id: "parser-shift-left",
    kind: "parser",
    what: "`a << 8` does not parse",
    probe: { source: "const a = 1; console.log(String(a << 8));", native: "parse error" },
    workaround: "tsbundle writes `((a | 0) * 2**k) | 0` for a literal k; `<<=` is refused",
    bundler: "rewritten",
    tagged: true,
  },
  {
    id: "parser-paren-literal",
    kind: "parser",
    what: "`({` and `([` start an arrow function's parameter list: parenthesized literals do not parse",
    probe: { source: "const o = ({ k: 1 }); console.log(String(o.k));", native: "parse error" },
    workaround: "tsbundle drops the parentheses (an arrow function returning a literal gets a block body)",
    bundler: "rewritten",
    tagged: true,
  },
  {
    id: "parser-type-arguments",
    kind: "parser",
    what: "`new Set<string>()` compiles into a value that throws on first use",
    probe: {
      source: "const s = new Set<string>(); console.log(String(s.has('x')));",
      native: "Uncaught TypeError: Cannot read property of undefined",
    },
    workaround: "tsbundle drops the type arguments of calls and constructions",
    bundler: "rewritten",
    tagged: true,
  },
  {
    id: "parser-parameter-property",
    kind: "parser",
    what: "parameter properties (`constructor(private v: number)`) are ignored",
    probe: {
      source:
        "class C { constructor(private v: number) {} get(): string { return String(this.v); } } console.log(new C(3).get());",
      native: "undefined",
    },
    workaround: "tsconfig.json's erasableSyntaxOnly: tsc refuses them, fields are assigned in the constructor",
    tagged: true,
  },
  {
    id: "c-macro-names",
    kind: "compile",
    what: "JS names stay C names: one equal to a libc macro (S_IFDIR, ENOENT, O_RDONLY) breaks the C compile",
    probe: { source: "const S_IFDIR = 1; console.log(String(S_IFDIR));", native: "C compile error" },
    workaround: "constants live in objects (OpenFlags.RDONLY, Errno.ENOENT), which the bundler inlines as literals",
    tagged: true,
  },
  {
    id: "json-stringify-map",
    kind: "crash",
    what: "JSON.stringify of an object holding a Map crashes the program (SIGSEGV); Node writes {}",
    probe: {
      source: "const o = { m: new Map() }; o.m.set('a', 'b'); console.log(JSON.stringify(o));",
      native: "signal SIGSEGV",
    },
    workaround: "values printed with JSON.stringify hold arrays of records, not Maps (Config.moduleParams)",
    tagged: true,
  },
];
