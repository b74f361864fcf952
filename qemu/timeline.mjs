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
