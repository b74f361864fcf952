// The boot's picture (qemu/timeline.mjs timelineSvg), parsed as XML and checked against the
// console it was drawn from: the lines of a real boot through the second stage (npm run compare:
// OVMF, storage-init, Debian's systemd initrd, LUKS2 with the TPM, the root's systemd), kept in
// tests/qemu/second-stage.console.
import test from "ava";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bootSpans, timelineSvg } from "../../qemu/timeline.mjs";
import { ROOT } from "../../toolchain/tools.mjs";

const CONSOLE = readFileSync(join(ROOT, "tests", "qemu", "second-stage.console"), "utf8");

interface Rect {
  "@_x": string;
  "@_width": string;
  title: string;
}
interface Line {
  "@_x1": string;
  title: string;
}
interface Lane {
  "@_data-lane": string;
  rect?: Rect | Rect[];
  line?: Line | Line[];
}

/** The picture's lanes, in drawing order (the whole boot's, then storage-init's window). */
function lanesOf(svg: string): Lane[] {
  wellFormed(svg);
  const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === "g" }).parse(svg) as {
    svg: { g?: Lane[] };
  };
  return doc.svg.g ?? [];
}

/** Throws unless `svg` is well-formed XML. */
function wellFormed(svg: string): void {
  const v = XMLValidator.validate(svg);
  if (v !== true) throw new Error(`not well-formed XML: ${JSON.stringify(v)}`);
}

const many = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

test("timelineSvg() draws each part of the boot in a lane, and storage-init's window again at its own scale", (t) => {
  const lanes = lanesOf(timelineSvg(CONSOLE, "a & b <boot>"));
  t.deepEqual(
    lanes.map((l) => l["@_data-lane"]),
    ["kernel", "storage-init", "modules", "second stage", "systemd", "storage-init", "modules"],
  );
  const timings = JSON.parse(/TIMINGS (\{.*\})/.exec(CONSOLE)?.[1] ?? "{}") as {
    phases: Array<{ phase: string; startMs: number; endMs: number }>;
  };
  for (const lane of [lanes[1], lanes[5]]) {
    const rects = many(lane.rect);
    // One bar per phase, in order, each as long as timings.json says, on one scale.
    t.deepEqual(
      rects.map((r) => r.title.split(":")[0]),
      timings.phases.map((p) => p.phase),
    );
    const ms = (p: { startMs: number; endMs: number }) => p.endMs - p.startMs;
    const longest = timings.phases.reduce((a, p, i) => (ms(p) > ms(timings.phases[a]) ? i : a), 0);
    const scale = Number(rects[longest]["@_width"]) / ms(timings.phases[longest]);
    for (const [i, r] of rects.entries()) {
      const p = timings.phases[i];
      t.true(Math.abs(Number(r["@_width"]) - Math.max(1, ms(p) * scale)) < 0.2, p.phase);
      if (i > 0) t.true(Number(r["@_x"]) >= Number(rects[i - 1]["@_x"]), `${p.phase} after the one before`);
    }
  }
  // The zoomed window is wider per millisecond than the whole boot.
  t.true(Number(many(lanes[5].rect)[1]["@_width"]) > 10 * Number(many(lanes[1].rect)[1]["@_width"]));
  const loaded = [...CONSOLE.matchAll(/storage-init: loaded (\S+) \(/g)].map((m) => m[1]);
  t.true(loaded.length > 10);
  t.deepEqual(
    many(lanes[2].rect).map((r) => r.title.split(":")[0]),
    loaded,
  );
  const moments = [...many(lanes[3].line), ...many(lanes[4].line)].map((l) => l.title.split(":")[0]);
  for (const m of [
    "enter-initrd",
    "unlocked",
    "root mounted",
    "initrd.target",
    "local-fs",
    "multi-user",
    "root's marker",
  ])
    t.true(moments.includes(m), m);
});

test("bootSpans() takes the times from the kernel's stamps, wherever they are in a line", (t) => {
  const { lanes, end } = bootSpans(CONSOLE);
  const run = Number(/\[\s*(\d+\.\d+)\] Run \/init as init process/.exec(CONSOLE)?.[1]);
  t.is(lanes[0].spans[0].to, run);
  const second = lanes.find((l) => l.name === "second stage");
  t.truthy(second);
  const unlocked = second?.moments.find((m) => m.label === "unlocked");
  t.is(unlocked?.at, Number(/\[\s*(\d+\.\d+)\] systemd\[1\]: Finished systemd-cryptsetup@/.exec(CONSOLE)?.[1]));
  t.is(end, Math.max(...lanes.flatMap((l) => [...l.spans.map((s) => s.to), ...l.moments.map((m) => m.at)])));
  // A root without systemd (the test disks' marker): its mark gets a lane of its own.
  const cut = CONSOLE.slice(0, CONSOLE.lastIndexOf("\n", CONSOLE.indexOf("storage-init: starting")) + 1);
  const direct = bootSpans(`${cut}[   99.500000] ROOT-REACHED uptime=99.50 pid=1 argv=/sbin/init\n`);
  t.deepEqual(direct.lanes[direct.lanes.length - 1], {
    name: "root",
    spans: [],
    moments: [{ at: 99.5, label: "root's marker" }],
  });
  t.false(direct.lanes.some((l) => l.name === "systemd" || l.name === "second stage"));
  // A console with no "Run /init" draws nothing rather than something made up.
  t.deepEqual(bootSpans("[    0.1] Linux version 6.1\n"), { lanes: [], end: 0 });
  wellFormed(timelineSvg("no kernel here", "empty"));
});

test("docs/timeline.svg, which the README shows, is timelineSvg()'s picture of a real boot", (t) => {
  const svg = readFileSync(join(ROOT, "docs", "timeline.svg"), "utf8");
  t.true(svg.includes("made by storage-init's qemu/timeline.mjs timelineSvg()"));
  const lanes = lanesOf(svg).map((l) => l["@_data-lane"]);
  t.true(lanes.includes("storage-init") && lanes.includes("modules") && lanes.includes("systemd"), lanes.join(", "));
  t.regex(readFileSync(join(ROOT, "README.md"), "utf8"), /!\[[^\]]*\]\(docs\/timeline\.svg\)/);
});
