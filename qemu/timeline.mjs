// The boot timeline from a captured console: kernel timestamps of "Run /init" and of each
// storage-init line, as milliseconds since the init started.

/** [{ t (seconds), text }] for lines with a printk timestamp. */
export function stampedLines(output) {
  const out = [];
  for (const line of output.split("\n")) {
    const m = line.match(/^\[\s*(\d+\.\d+)\]\s?(.*)$/);
    if (m) out.push({ t: Number(m[1]), text: m[2] });
  }
  return out;
}

/**
 * The lines the timeline shows: storage-init's, the root's marker, the end; systemd's start and
 * its milestones; and, in a second stage, PCR 11's phases, the unlock, the root's mount and the
 * switch into it.
 */
const EVENTS = new RegExp(
  [
    /^storage-init:|ROOT-REACHED|reboot: |Kernel panic/.source,
    /systemd\[1\]: (systemd \d+\S* running|Reached target (initrd|local-fs|sysinit|basic|multi-user)\.target|Startup finished|Switching root)/
      .source,
    /systemd\[1\]: Finished systemd-cryptsetup@|systemd-pcrphase\[\d+\]: Successfully extended|EXT4-fs \(\S+\): mounted/
      .source,
  ].join("|"),
);

/**
 * The kernel's timestamps (seconds) of the console lines matching `re`, in order: the stamp may
 * be anywhere in a line (systemd's status output, redrawn with \r, may precede a kernel
 * message on the same line).
 * @param {string} output
 * @param {RegExp} re
 * @returns {number[]}
 */
export function stampsOf(output, re) {
  return [...output.matchAll(new RegExp(`\\[\\s*(\\d+\\.\\d+)\\] (?:${re.source})`, "g"))].map((m) => Number(m[1]));
}

/** A printable table: each storage-init line, and the EVENTS after it, with its time since "Run /init". */
export function timeline(output) {
  const lines = stampedLines(output);
  const start = lines.find((l) => /Run \/init as init process/.test(l.text));
  if (!start) return "timeline: no 'Run /init' line in the console output";
  const rows = [`${"ms since /init".padStart(14)}  event`];
  for (const l of lines) {
    if (l.t < start.t) continue;
    if (l === start || EVENTS.test(l.text)) {
      rows.push(`${((l.t - start.t) * 1000).toFixed(1).padStart(14)}  ${l.text.slice(0, 110)}`);
    }
  }
  return rows.join("\n");
}

/**
 * What systemd said inside the booted system (the demo's ANALYZE lines): `systemd-analyze time`,
 * and the initrd's time as systemd computes it (UserspaceTimestampMonotonic -
 * InitRDTimestampMonotonic, from what storage-init handed over), next to storage-init's own
 * figure (its start to the execve of systemd). Missing parts are undefined.
 */
export function analyzeInitrd(output) {
  // Searched anywhere in a line: systemd's status output (a "start job is running" line redrawn
  // with \r and no newline) may precede a kernel message on the same console line.
  const analyze = [...output.matchAll(/ANALYZE (.*)$/gm)].map((m) => m[1]);
  const usec = output.match(/ANALYZE-INITRD-USEC (\d+) (\d+)/);
  const ours = output.match(/storage-init: starting \S+ after (\d+\.\d+) ms/);
  let systemdMs;
  if (usec) {
    const [initrd, userspace] = usec.slice(1).map(Number);
    if (initrd > 0 && userspace > initrd) systemdMs = (userspace - initrd) / 1000;
  }
  const shown = analyze.join(" ").match(/([\d.]+(?:min|ms|s)(?: [\d.]+(?:ms|s))*) \(initrd\)/);
  return {
    analyze,
    analyzeInitrd: shown ? shown[1] : undefined,
    systemdMs,
    oursMs: ours ? Number(ours[1]) : undefined,
  };
}

/** A printable summary of analyzeInitrd(). */
export function analyzeTable(output) {
  const a = analyzeInitrd(output);
  if (a.analyze.length === 0) return "systemd-analyze: no ANALYZE lines in the console output";
  const f = (v) => (v === undefined ? "?" : `${v.toFixed(1)} ms`);
  return [
    "systemd-analyze time, inside the booted system:",
    ...a.analyze.map((l) => `  ${l}`),
    `initrd: systemd-analyze "${a.analyzeInitrd ?? "?"} (initrd)" = ${f(a.systemdMs)} from storage-init's start ` +
      `to the booted root's systemd; storage-init's own log: ${f(a.oursMs)} to its execve of systemd`,
  ].join("\n");
}

/**
 * The spans and moments of a boot, in seconds of the kernel's clock, from its console: the
 * kernel to "Run /init" (and its unpacking of the initramfs); storage-init's phases (its
 * timings.json, as the root's marker logs it); each module load (its line's time and duration);
 * a second stage, from storage-init's execve of its systemd to "Switching root."; the root's
 * systemd from its start to multi-user.target. Moments: PCR 11's phases, the unlock, the root's
 * mount, systemd's milestones, the root's marker.
 * @returns {{ lanes: Array<{ name: string, spans: Array<{ from: number, to: number, label: string }>,
 *   moments: Array<{ at: number, label: string }> }>, end: number }}
 */
export function bootSpans(output) {
  // A timestamp anywhere in a console line: systemd's status output, redrawn with \r, may
  // precede a kernel message on the same line.
  const lines = [...output.matchAll(/\[\s*(\d+\.\d+)\] ([^\n]*)/g)].map((m) => ({ t: Number(m[1]), text: m[2] }));
  const first = (re) => lines.find((l) => re.test(l.text));
  const last = (re) => lines.filter((l) => re.test(l.text)).pop();
  const lanes = [];
  const run = first(/Run \/init as init process/);
  if (run === undefined) return { lanes, end: 0 };
  const kernel = { name: "kernel", spans: [{ from: 0, to: run.t, label: "the kernel, to Run /init" }], moments: [] };
  const unpack = first(/Trying to unpack rootfs image as initramfs/);
  const freed = first(/Freeing initrd memory/);
  if (unpack && freed) kernel.spans.push({ from: unpack.t, to: freed.t, label: "initramfs unpacked" });
  lanes.push(kernel);
  const timings = output.match(/TIMINGS (\{.*\})/);
  if (timings) {
    const phases = /** @type {{ phases: Array<{ phase: string, startMs: number, endMs: number }> }} */ (
      JSON.parse(timings[1])
    ).phases;
    lanes.push({
      name: "storage-init",
      spans: phases.map((p) => ({ from: p.startMs / 1000, to: p.endMs / 1000, label: p.phase })),
      moments: [],
    });
  }
  const loads = [];
  for (const l of lines) {
    const m = l.text.match(/^storage-init: loaded (\S+) \((\d+\.\d+) ms\)/);
    if (m) loads.push({ from: l.t - Number(m[2]) / 1000, to: l.t, label: m[1] });
  }
  if (loads.length > 0) lanes.push({ name: "modules", spans: loads, moments: [] });
  const systemds = lines.filter((l) => /systemd\[1\]: systemd \d+\S* running in system mode/.test(l.text));
  const secondExec = first(/^storage-init: starting \/usr\/lib\/systemd\/systemd after/);
  const switching = first(/systemd\[1\]: Switching root\./);
  const moment = (re, label) => {
    const l = first(re);
    return l === undefined ? [] : [{ at: l.t, label }];
  };
  if (secondExec && switching && switching.t > secondExec.t)
    lanes.push({
      name: "second stage",
      spans: [{ from: secondExec.t, to: switching.t, label: "the second stage's systemd, to Switching root" }],
      moments: [
        ...moment(/systemd-pcrphase\[\d+\]: Successfully extended PCR index 11 with 'enter-initrd'/, "enter-initrd"),
        ...moment(/systemd\[1\]: Finished systemd-cryptsetup@/, "unlocked"),
        ...moment(/EXT4-fs \(\S+\): mounted filesystem/, "root mounted"),
        ...moment(/systemd\[1\]: Reached target initrd\.target/, "initrd.target"),
      ],
    });
  const rootSystemd = systemds[systemds.length - 1];
  const multiUser = last(/systemd\[1\]: Reached target multi-user\.target/);
  if (rootSystemd && (secondExec === undefined || rootSystemd.t > secondExec.t)) {
    const after = lines.filter((l) => l.t >= rootSystemd.t);
    const at = (re, label) => {
      const l = after.find((x) => re.test(x.text));
      return l === undefined ? [] : [{ at: l.t, label }];
    };
    lanes.push({
      name: "systemd",
      spans: [
        { from: rootSystemd.t, to: (multiUser ?? rootSystemd).t, label: "the root's systemd, to multi-user.target" },
      ],
      moments: [
        ...at(/systemd\[1\]: Reached target local-fs\.target/, "local-fs"),
        ...at(/systemd\[1\]: Reached target sysinit\.target/, "sysinit"),
        ...at(/systemd\[1\]: Reached target basic\.target/, "basic"),
        ...at(/systemd\[1\]: Reached target multi-user\.target/, "multi-user"),
      ],
    });
  }
  const reached = first(/ROOT-REACHED/);
  if (reached) {
    const marker = { at: reached.t, label: "root's marker" };
    const systemd = lanes.find((l) => l.name === "systemd");
    if (systemd !== undefined) systemd.moments.push(marker);
    else lanes.push({ name: "root", spans: [], moments: [marker] });
  }
  let end = 0;
  for (const lane of lanes) {
    for (const s of lane.spans) end = Math.max(end, s.to);
    for (const m of lane.moments) end = Math.max(end, m.at);
  }
  return { lanes, end };
}

/** `s` for SVG text and attributes. */
function xml(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Each lane's bar colour (the storage-init phases alternate two). */
const COLOURS = {
  kernel: "#8c8c8c",
  "storage-init": "#2b6cb0",
  modules: "#d69e2e",
  "second stage": "#805ad5",
  systemd: "#2f855a",
};

/**
 * The boot as an SVG picture (bootSpans()): one lane per part along the kernel's seconds, every
 * bar and moment with a <title> of its name and times; below, storage-init's own window (from
 * "Run /init" to its execve of the next init) drawn again at its own scale, where its phases and
 * module loads can be told apart. `title` heads it.
 */
export function timelineSvg(output, title) {
  const { lanes, end } = bootSpans(output);
  const width = 1000;
  const out = [];
  let y = 34;
  out.push(...panel(lanes, 0, end, y, width));
  y += lanes.length * LANE + 56;
  const run = lanes.find((l) => l.name === "kernel")?.spans[0].to;
  const ours = lanes.filter((l) => l.name === "storage-init" || l.name === "modules");
  const handover = Math.max(...ours.flatMap((l) => l.spans.map((s) => s.to)));
  if (run !== undefined && ours.length > 0 && handover > run) {
    out.push(
      `<text x="10" y="${y - 8}" font-weight="bold">storage-init, ${((handover - run) * 1000).toFixed(0)} ms</text>`,
    );
    out.push(...panel(ours, run, handover, y, width));
    y += ours.length * LANE + 56;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif" font-size="11">`,
    `<!-- made by storage-init's qemu/timeline.mjs timelineSvg() from the kernel's timestamps -->`,
    `<rect width="${width}" height="${y}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${xml(title)}</text>`,
    ...out,
    "</svg>",
    "",
  ].join("\n");
}

/** A lane's height in the picture. */
const LANE = 34;

/** The SVG elements of `lanes` between `from` and `to` seconds, their top at `top`. */
function panel(lanes, from, to, top, width) {
  const left = 120;
  const plot = width - left - 20;
  const span = to - from;
  const x = (t) => left + (span > 0 ? ((t - from) / span) * plot : 0);
  const out = [];
  const step = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60].find((s) => span / s <= 12) ?? 120;
  const axis = top + lanes.length * LANE + 8;
  for (let i = 0; from + i * step <= to + 1e-9; i++) {
    const t = from + i * step;
    const label = from === 0 ? `${Number(t.toFixed(2))} s` : `+${Math.round(i * step * 1000)} ms`;
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${top}" x2="${x(t).toFixed(1)}" y2="${axis}" stroke="#e2e2e2"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${axis + 14}" text-anchor="middle">${label}</text>`);
  }
  for (const [i, lane] of lanes.entries()) {
    const y = top + i * LANE;
    out.push(`<g class="lane" data-lane="${xml(lane.name)}">`);
    out.push(`<text x="10" y="${y + 21}">${xml(lane.name)}</text>`);
    for (const [j, s] of lane.spans.entries()) {
      const w = Math.max(1, x(s.to) - x(s.from));
      const fill =
        lane.name === "storage-init" && j % 2 === 1
          ? "#63a4e8"
          : lane.name === "kernel" && j > 0
            ? "#4a4a4a"
            : (COLOURS[lane.name] ?? "#555555");
      const h = lane.name === "kernel" && j > 0 ? 8 : 18;
      out.push(
        `<rect x="${x(s.from).toFixed(1)}" y="${y + 6 + (18 - h)}" width="${w.toFixed(1)}" height="${h}" fill="${fill}">` +
          `<title>${xml(`${s.label}: ${s.from.toFixed(3)} s to ${s.to.toFixed(3)} s (${((s.to - s.from) * 1000).toFixed(1)} ms)`)}</title></rect>`,
      );
      if (w > 6 * s.label.length)
        out.push(
          `<text x="${(x(s.from) + 2).toFixed(1)}" y="${y + 19}" fill="#ffffff" font-size="9">${xml(s.label)}</text>`,
        );
    }
    // Marks close together share one label; labels alternate above and below the bar, and
    // near the right edge read leftwards, so that they are not cut off.
    const groups = [];
    for (const m of [...lane.moments].sort((p, q) => p.at - q.at)) {
      const mx = x(m.at);
      out.push(
        `<line x1="${mx.toFixed(1)}" y1="${y + 2}" x2="${mx.toFixed(1)}" y2="${y + 28}" stroke="#c53030" stroke-width="1.5"><title>${xml(`${m.label}: ${m.at.toFixed(3)} s`)}</title></line>`,
      );
      const g = groups[groups.length - 1];
      // Within 40 px, or under the label of the mark before: about 5 px a character at 9 px.
      if (g !== undefined && mx - g.x < Math.max(40, 5 * g.labels.join(", ").length + 6)) g.labels.push(m.label);
      else groups.push({ x: mx, labels: [m.label] });
    }
    for (const [j, g] of groups.entries()) {
      const label = xml(g.labels.join(", "));
      const row = y + (j % 2 ? 31 : 9);
      out.push(
        g.x > width - 60 - 5 * label.length
          ? `<text x="${(g.x - 3).toFixed(1)}" y="${row}" fill="#c53030" font-size="9" text-anchor="end">${label}</text>`
          : `<text x="${(g.x + 3).toFixed(1)}" y="${row}" fill="#c53030" font-size="9">${label}</text>`,
      );
    }
    out.push("</g>");
  }
  return out;
}
