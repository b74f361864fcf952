import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Log } from "../runtime/log.js";
import { BootRun, phaseDoing, phaseIds, TIMINGS_FILE } from "../runtime/phases.js";
import { ROOT } from "../toolchain/tools.mjs";
import { RebootCmd } from "../syscalls/kernel.js";
import { FakeKernel } from "./fake_kernel.js";

test("phaseIds() lists the phases in boot order and phaseDoing() says what each does", (t) => {
  t.deepEqual(phaseIds(), ["api", "cmdline", "coldplug", "esp", "ddi", "verity", "mount", "switch-root"]);
  t.is(phaseDoing("api"), "mount the API file systems");
  t.is(phaseDoing("mount"), "mount the root", "an id inside another phase's text is not matched");
  t.is(phaseDoing("esp"), "mount the ESP");
  t.is(phaseDoing("switch-root"), "switch root");
  for (const id of phaseIds()) t.regex(phaseDoing(id), /^[a-z][a-zA-Z ]+[a-zA-Z]$/, id);
});

test("BootRun.enter() times each phase and doing() carries the phase's details", (t) => {
  const k = new FakeKernel();
  const run = new BootRun(k, new Log(k));
  run.enter("api");
  k.now += 2;
  run.enter("ddi", "/EFI/x.raw on /dev/vda1");
  t.is(run.doing(), "open the DDI /EFI/x.raw on /dev/vda1");
  t.deepEqual(
    k.failureAction,
    { doing: "open the DDI /EFI/x.raw on /dev/vda1", rebootCmd: RebootCmd.RESTART, delayMs: 5000 },
    "the runtime's own exit says the same, with the defaults",
  );
  run.config = { ...run.config, onFailure: "poweroff", failureDelayMs: 0 };
  k.now += 3.25;
  run.enter("mount");
  t.is(run.doing(), "mount the root");
  t.deepEqual(
    k.failureAction,
    { doing: "mount the root", rebootCmd: RebootCmd.POWER_OFF, delayMs: 0 },
    "and then the configured action",
  );
  k.now += 1;
  k.mkdirp("/run");
  const total = run.writeTimings();
  t.is(total, 6.25);
  t.is(run.summary(), "phases (ms): api 2.0, ddi 3.3, mount 1.0");
  const json = JSON.parse(new TextDecoder().decode(k.nodes.get(TIMINGS_FILE)?.data));
  t.deepEqual(json, {
    clock: "CLOCK_MONOTONIC",
    unit: "ms",
    startMs: 1000,
    totalMs: 6.25,
    phases: [
      { phase: "api", startMs: 1000, endMs: 1002, ms: 2 },
      { phase: "ddi", startMs: 1002, endMs: 1005.25, ms: 3.25 },
      { phase: "mount", startMs: 1005.25, endMs: 1006.25, ms: 1 },
    ],
  });
});

test("README.md: the phase table has one row per phase, in order, with its fatal line", (t) => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(
    readme.indexOf("## How it boots"),
    readme.indexOf("\n## ", readme.indexOf("## How it boots") + 1),
  );
  const rows = section.split("\n").filter((l) => /^\| `[a-z-]+` \|/.test(l));
  t.deepEqual(
    rows.map((r) => r.split("|")[1].trim()),
    phaseIds().map((id) => "`" + id + "`"),
  );
  for (const [i, id] of phaseIds().entries())
    t.true(rows[i].includes("failed to " + phaseDoing(id)), `${id}: "failed to ${phaseDoing(id)}"`);
});
