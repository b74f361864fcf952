/**
 * The boot's phases, declared once: `boot()` enters them in this order, the fatal line says
 * "failed to <what the phase does>", /run/storage-init/timings.json and the log's summary time
 * them, and the README's "How it boots" table has one row for each (a test compares them).
 *
 * Times are CLOCK_MONOTONIC, the clock of the kernel's printk timestamps; timings.json survives
 * the switch root.
 */
import { fixedPoint, formatMs } from "../lib/numbers.js";
import { splitText } from "../lib/text.js";
import { writeSmallFile } from "../syscalls/files.js";
import type { Kernel } from "../syscalls/kernel.js";
import { defaultConfig } from "./cmdline.js";
import type { Config } from "./cmdline.js";
import { rebootCommand } from "./failure.js";
import type { Log } from "./log.js";
import { mkdirAll } from "./mount.js";

export type PhaseId = "api" | "cmdline" | "coldplug" | "esp" | "ddi" | "verity" | "mount" | "switch-root";

/**
 * The phases in boot order, one a line: the id, then what the fatal line says the phase failed to
 * do. Text rather than an array of objects, which porffor builds with code run at start-up.
 */
export const PHASES =
  "api mount the API file systems\n" +
  "cmdline read the kernel command line\n" +
  "coldplug find the ESP\n" +
  "esp mount the ESP\n" +
  "ddi open the DDI\n" +
  "verity set up the root device\n" +
  "mount mount the root\n" +
  "switch-root switch root\n";

/** What phase `id` does, for its fatal line ("failed to " + phaseDoing(id)). */
export function phaseDoing(id: PhaseId): string {
  const table = "\n" + PHASES;
  const at = table.indexOf("\n" + id + " ") + id.length + 2;
  return table.slice(at, table.indexOf("\n", at));
}

/** The phase ids in boot order. */
export function phaseIds(): PhaseId[] {
  return splitText(PHASES.trim(), "\n").map((line) => line.slice(0, line.indexOf(" ")) as PhaseId);
}

export const TIMINGS_DIR = "/run/storage-init";
export const TIMINGS_FILE = TIMINGS_DIR + "/timings.json";

export interface PhaseTiming {
  phase: PhaseId;
  startMs: number;
  endMs: number;
}

/**
 * One boot's progress: the phase it is in, and how long each took. boot()'s catch block reads
 * `doing()` and `config` from it (porffor: try-catch-stale-locals).
 */
export class BootRun {
  /** The configuration, once the command line is read; the defaults until then. */
  config: Config = defaultConfig();
  /** The running phase and what the fatal line adds to its text. */
  phase: PhaseId = "api";
  detail = "";
  readonly startMs: number;
  private readonly phases: PhaseTiming[] = [];
  private current: PhaseTiming | undefined;
  private readonly k: Kernel;
  private readonly log: Log;

  constructor(k: Kernel, log: Log) {
    this.k = k;
    this.log = log;
    this.startMs = k.monotonicMs();
  }

  /** Ends the running phase and starts `id`; `detail` follows its text in a fatal line. */
  enter(id: PhaseId, detail: string = ""): void {
    this.end();
    this.phase = id;
    this.detail = detail;
    // Should the runtime itself exit, PID 1 still says what failed and does the configured action.
    this.k.setFailureAction(this.doing(), rebootCommand(this.config.onFailure), this.config.failureDelayMs);
    this.current = { phase: id, startMs: this.k.monotonicMs(), endMs: 0 };
  }

  /**
   * Names phase `id` (and `detail`) for the fatal line without starting a timing: a failure found
   * while the search is between candidates is the phase's, though the phase does not run again.
   */
  failIn(id: PhaseId, detail: string): void {
    this.phase = id;
    this.detail = detail;
    this.k.setFailureAction(this.doing(), rebootCommand(this.config.onFailure), this.config.failureDelayMs);
  }

  /** What the running phase was doing, for the fatal line: "failed to " + doing(). */
  doing(): string {
    const text = phaseDoing(this.phase);
    return this.detail === "" ? text : text + " " + this.detail;
  }

  /** Ends the running phase, logging its duration at debug level. */
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
    const each: string[] = [];
    for (const p of this.phases) each.push(p.phase + " " + formatMs(p.endMs - p.startMs));
    return "phases (ms): " + each.join(", ");
  }

  /**
   * The JSON written for the booted system: absolute monotonic times, in milliseconds with three
   * decimals. Built by hand (phase names are fixed ASCII identifiers) so that the init does not
   * carry porffor's general JSON serializer.
   */
  toJson(): string {
    const r = (v: number) => fixedPoint(v, 3);
    const phases: string[] = [];
    for (const p of this.phases) {
      phases.push(
        '{"phase":"' +
          p.phase +
          '","startMs":' +
          r(p.startMs) +
          ',"endMs":' +
          r(p.endMs) +
          ',"ms":' +
          r(p.endMs - p.startMs) +
          "}",
      );
    }
    const n = this.phases.length;
    const total = n > 0 ? this.phases[n - 1].endMs - this.startMs : 0;
    return (
      '{"clock":"CLOCK_MONOTONIC","unit":"ms","startMs":' +
      r(this.startMs) +
      ',"totalMs":' +
      r(total) +
      ',"phases":[' +
      phases.join(",") +
      "]}"
    );
  }

  /** Ends the running phase and writes timings.json; returns the milliseconds from the start. */
  writeTimings(): number {
    this.end();
    mkdirAll(this.k, TIMINGS_DIR, 0o755);
    writeSmallFile(this.k, TIMINGS_FILE, this.toJson() + "\n", 0o644);
    return this.k.monotonicMs() - this.startMs;
  }
}
