/**
 * Per-phase timing on CLOCK_MONOTONIC (the clock of the kernel's printk timestamps), logged in
 * one line before the handover and written to /run/storage-init/timings.json, which survives the
 * switch root.
 */
import type { Kernel } from "../syscalls/kernel.js";
import { OpenFlags } from "../syscalls/kernel.js";
import { utf8Encode } from "../syscalls/bytes.js";
import type { Log } from "./log.js";
import { mkdirAll } from "./mount.js";
import { fixedPoint, formatMs } from "./numbers.js";

export const TIMINGS_DIR = "/run/storage-init";
export const TIMINGS_FILE = TIMINGS_DIR + "/timings.json";

export interface PhaseTiming {
  phase: string;
  startMs: number;
  endMs: number;
}

export class Timings {
  readonly phases: PhaseTiming[] = [];
  readonly startMs: number;
  private current: PhaseTiming | undefined;

  constructor(
    private readonly k: Kernel,
    private readonly log: Log,
  ) {
    this.startMs = k.monotonicMs();
  }

  /** Ends the running phase (logging its duration) and starts `phase`. */
  begin(phase: string): void {
    this.end();
    this.current = { phase, startMs: this.k.monotonicMs(), endMs: 0 };
  }

  end(): void {
    const c = this.current;
    if (c === undefined) return;
    c.endMs = this.k.monotonicMs();
    this.phases.push(c);
    this.current = undefined;
    this.log.debug("phase " + c.phase + ": " + formatMs(c.endMs - c.startMs) + " ms");
  }

  /** One line for the log: each phase's duration. */
  summary(): string {
    return "phases (ms): " + this.phases.map((p) => p.phase + " " + formatMs(p.endMs - p.startMs)).join(", ");
  }

  /**
   * The JSON written for the booted system: absolute monotonic times, in milliseconds with three
   * decimals. Built by hand (phase names are fixed ASCII identifiers) so that the init does not
   * carry porffor's general JSON serializer.
   */
  toJson(): string {
    const r = (v: number) => fixedPoint(v, 3);
    const total = this.phases.length > 0 ? this.phases[this.phases.length - 1].endMs - this.startMs : 0;
    const phases = this.phases.map((p) =>
      '{"phase":"' + p.phase + '","startMs":' + r(p.startMs) + ',"endMs":' + r(p.endMs) + ',"ms":' + r(p.endMs - p.startMs) + "}");
    return '{"clock":"CLOCK_MONOTONIC","unit":"ms","startMs":' + r(this.startMs) + ',"totalMs":' + r(total) + ',"phases":[' + phases.join(",") + "]}";
  }

  write(): void {
    this.end();
    mkdirAll(this.k, TIMINGS_DIR, 0o755);
    const fd = this.k.open(TIMINGS_FILE, OpenFlags.WRONLY | OpenFlags.CREAT | OpenFlags.TRUNC, 0o644);
    try {
      this.k.write(fd, utf8Encode(this.toJson() + "\n"));
    } catch (e) {
      this.k.close(fd);
      throw e;
    }
    this.k.close(fd);
  }
}
