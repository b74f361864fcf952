import test from "ava";
import { finalAction, rebootCommand } from "../runtime/failure.js";
import { Log } from "../runtime/log.js";
import { RebootCmd } from "../syscalls/kernel.js";
import { FakeKernel, FakeStop } from "./fake_kernel.js";
import { logLines } from "./fake_world.js";

/** Runs finalAction to its end: it never returns, FakeKernel stops it at the endless sleep. */
function act(k: FakeKernel, action: "reboot" | "poweroff" | "halt" | "shell", delayMs: number): FakeStop {
  try {
    finalAction(k, new Log(k), action, delayMs);
  } catch (e) {
    if (e instanceof FakeStop) return e;
    throw e;
  }
  throw new Error("finalAction returned");
}

test("rebootCommand() maps each failure action to its reboot(2) command", (t) => {
  t.is(rebootCommand("reboot"), RebootCmd.RESTART);
  t.is(rebootCommand("poweroff"), RebootCmd.POWER_OFF);
  t.is(rebootCommand("halt"), RebootCmd.HALT);
  t.is(rebootCommand("shell"), RebootCmd.RESTART);
});

test("finalAction() waits the delay, says what it does, and never returns", (t) => {
  const k = new FakeKernel();
  const start = k.now;
  t.is(act(k, "poweroff", 2500).reason, "halted");
  t.deepEqual(k.reboots, [RebootCmd.POWER_OFF]);
  t.true(k.now - start >= 2500);
  t.deepEqual(logLines(k), ["storage-init: poweroff in 2.5 s", "storage-init: powering off"]);
});

test("finalAction() halts when reboot(2) itself fails, with the reason", (t) => {
  const k = new FakeKernel();
  k.reboot = () => {
    throw new Error("EPERM");
  };
  t.is(act(k, "reboot", 0).reason, "halted");
  t.deepEqual(logLines(k), ["storage-init: rebooting", "storage-init: cannot reboot: EPERM; halting here"]);
});

test("finalAction() with on_failure=shell and no shell reboots, saying so", (t) => {
  const k = new FakeKernel();
  act(k, "shell", 0);
  t.deepEqual(k.reboots, [RebootCmd.RESTART]);
  t.true(
    logLines(k).includes(
      "storage-init: on_failure=shell: no shell in the initramfs (tried /bin/sh, /usr/bin/sh, /bin/busybox); rebooting instead",
    ),
  );
});
