// build.mjs's command line: what it refuses before it compiles anything.
import test from "ava";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../toolchain/tools.mjs";

/** What `node build.mjs ...args` writes to stderr; each case stops before the compile. */
function refusal(...args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, "build.mjs"), ...args], { cwd: ROOT, encoding: "utf8" });
  return r.stderr.trim();
}

test("build.mjs --uki checks --roothash as the init checks roothash=", (t) => {
  t.is(refusal("--uki", "--roothash", "abc"), "build: --roothash has an odd number of digits (3)");
  t.is(refusal("--uki", "--roothash", "ab".repeat(65)), "build: --roothash has 130 digits; expected 32 to 128");
  t.is(refusal("--uki", "--roothash", ""), "build: --roothash is empty");
  // Taken (SHA-1's 40 digits, upper case): the next check, of --arch, is what stops the build.
  t.is(refusal("--uki", "--roothash", "AB".repeat(20), "--arch", "none"), "build: --arch none: x86-64 or arm64");
  t.regex(refusal("--uki", "--arch", "none"), /^build: --uki needs --roothash with the DDI's root hash: /);
  t.is(refusal("--uki", "--root-policy", "signed", "--arch", "none"), "build: --arch none: x86-64 or arm64");
});
