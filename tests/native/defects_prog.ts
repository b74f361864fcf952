/**
 * Minimal programs for porffor 0.0.0-alpha.7's known runtime defects, one line each:
 * `<id>: <answer>`, with the ids and both answers in toolchain/porffor/defects.ts. A compiler
 * upgrade that fixes (or changes) a defect fails tests/native.test.ts, and the workaround can go.
 * Compiled with the bundler's hazard refusals off: it is made of the hazards.
 */
import type { Kernel } from "../../syscalls/kernel.js";

function tryFinallyReturn(log: string[]): number {
  try {
    return 1;
  } finally {
    log.push("finally ran");
  }
}

class Base {
  name = "base";
  who(): string {
    return this.name;
  }
}
class Derived extends Base {
  who(): string {
    return "derived of " + super.who();
  }
}

class MyError extends Error {
  constructor(m: string) {
    super(m);
  }
}

class Counter {
  n = 0;
  [Symbol.iterator]() {
    let i = 0;
    return { next: () => (i < 2 ? { value: i++, done: false } : { value: 0, done: true }) };
  }
}

function stageSeenInCatch(fail: boolean): string {
  let stage = "before";
  try {
    stage = "inside";
    if (fail) throw new Error("x");
    stage = "after";
  } catch (e) {
    return stage;
  }
  return stage;
}

export function run(_k: Kernel, _scratch: string): string[] {
  const out: string[] = [];
  const log: string[] = [];
  tryFinallyReturn(log);
  out.push("try-finally-return: " + (log.length === 1 ? "finally ran" : "finally skipped"));
  out.push("super-method: " + new Derived().who());
  out.push("extends-error: " + String(new MyError("boom").message));
  const joined = new Uint8Array([1, 2, 3]).join(",");
  out.push("typedarray-join: " + (joined === "1,2,3" ? "correct" : "wrong"));
  let iterated = "";
  try {
    for (const v of new Counter()) iterated += v;
    out.push("user-iterator: " + iterated);
  } catch (e) {
    out.push("user-iterator: threw");
  }
  const wide = JSON.stringify("\u20ac");
  out.push(
    "json-stringify-wide: " +
      (wide.length === 3 && wide.charCodeAt(1) === 0x20ac
        ? "kept"
        : "truncated to 0x" + wide.charCodeAt(1).toString(16)),
  );
  out.push("tofixed-carry: " + (1.96).toFixed(1));
  out.push("math-round-half: " + Math.round(0.5));
  out.push("try-catch-stale-locals: " + stageSeenInCatch(true));
  out.push("no-process: " + typeof (globalThis as { process?: unknown }).process);
  // A view inside a larger buffer, so that the stray read and write stay in memory we own.
  const backing = new Uint8Array(16);
  backing[6] = 42;
  const view = backing.subarray(0, 4);
  const read = String(view[6]);
  view[9] = 7;
  out.push("typedarray-bounds: " + read + ", " + backing[9]);
  out.push("large-integer-text: " + String(2 ** 60));
  const wideKey = "a\u20ac";
  const narrowKey = "a~";
  out.push("wide-string-compare: " + String(wideKey > narrowKey));
  const word = 0xffffffff;
  out.push("bitwise-not-wide: " + String(~word >>> 0));
  return out;
}
