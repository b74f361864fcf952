// cli/storage-init-bless, the booted system's boot counting, run by sh on an ESP directory laid
// out as /run/storage-init would be (the directory is no mount point: nothing is remounted).
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../toolchain/tools.mjs";
import { inTempDir } from "./helpers.js";

const BLESS = join(ROOT, "cli", "storage-init-bless");
const DIR = "/EFI/os/root.v";

function booted(run: string, name: string): void {
  mkdirSync(join(run, "esp", DIR), { recursive: true });
  writeFileSync(join(run, "esp", DIR, name), "ddi");
  writeFileSync(join(run, "esp", DIR, "root_1.raw"), "older");
  writeFileSync(join(run, "root.json"), `{"esp":{"device":"/dev/vda1"},"path":"${DIR}/${name}","imageVersion":"2"}\n`);
}

function bless(run: string, action: string): { code: number | null; out: string } {
  const r = spawnSync("sh", [BLESS, action], { env: { ...process.env, STORAGE_INIT_RUN: run }, encoding: "utf8" });
  return { code: r.status, out: (r.stdout + r.stderr).trim() };
}

const names = (run: string) => readdirSync(join(run, "esp", DIR)).sort();

test("storage-init-bless counts a try down early and drops the counter once the boot is complete", (t) => {
  inTempDir((run) => {
    booted(run, "root_2+3.raw");
    t.deepEqual(bless(run, "count"), {
      code: 0,
      out: `storage-init-bless: count: ${DIR}/root_2+3.raw -> ${DIR}/root_2+2-1.raw`,
    });
    t.deepEqual(names(run), ["root_1.raw", "root_2+2-1.raw"]);
    t.deepEqual(bless(run, "good"), {
      code: 0,
      out: `storage-init-bless: good: ${DIR}/root_2+2-1.raw -> ${DIR}/root_2.raw`,
    });
    t.deepEqual(names(run), ["root_1.raw", "root_2.raw"]);
    t.false(existsSync(join(run, "bless-path")));
  });
});

test("storage-init-bless leaves a name without a counter, stops at +0, and marks a bad one +0", (t) => {
  inTempDir((run) => {
    booted(run, "root_2.raw");
    t.deepEqual(bless(run, "count"), {
      code: 0,
      out: `storage-init-bless: ${DIR}/root_2.raw has no boot counter: nothing to do`,
    });
    t.deepEqual(names(run), ["root_1.raw", "root_2.raw"]);
  });
  inTempDir((run) => {
    booted(run, "root_2+1-2.raw");
    t.is(bless(run, "count").code, 0);
    t.deepEqual(names(run), ["root_1.raw", "root_2+0-3.raw"]);
    t.deepEqual(bless(run, "count"), { code: 0, out: `storage-init-bless: ${DIR}/root_2+0-3.raw has no tries left` });
  });
  inTempDir((run) => {
    booted(run, "root_2+3.raw");
    t.is(bless(run, "bad").code, 0);
    t.deepEqual(names(run), ["root_1.raw", "root_2+0-0.raw"]);
  });
});

test("storage-init-bless refuses a usage it does not know, and a counter that is not one", (t) => {
  inTempDir((run) => {
    booted(run, "root_2+x.raw");
    t.is(bless(run, "maybe").code, 2);
    t.deepEqual(bless(run, "count"), {
      code: 1,
      out: `storage-init-bless: ${DIR}/root_2+x.raw: the counter +x is not +LEFT or +LEFT-DONE`,
    });
  });
});

test("the units pass systemd-analyze verify", (t) => {
  const units = ["storage-init-count.service", "storage-init-bless.service"].map((u) => join(ROOT, "cli", "units", u));
  // The units name /usr/lib/storage-init/storage-init-bless, which this machine does not have: verify
  // checks the unit files' syntax and dependencies, and names a missing executable, which is expected here.
  const r = spawnSync("systemd-analyze", ["verify", ...units], { encoding: "utf8" });
  const problems = (r.stdout + r.stderr)
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.includes("/usr/lib/storage-init/storage-init-bless"));
  t.deepEqual(problems, []);
});
