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

/** A printable table: each storage-init line with its time since "Run /init". */
export function timeline(output) {
  const lines = stampedLines(output);
  const start = lines.find((l) => /Run \/init as init process/.test(l.text));
  if (!start) return "timeline: no 'Run /init' line in the console output";
  const rows = [`${"ms since /init".padStart(14)}  event`];
  for (const l of lines) {
    if (l.t < start.t) continue;
    if (
      l === start ||
      /^storage-init:|ROOT-REACHED|reboot: |Kernel panic|systemd\[1\]: (systemd \d+\S* running|Reached target (local-fs|sysinit|basic|multi-user)\.target|Startup finished)/.test(
        l.text,
      )
    ) {
      rows.push(`${((l.t - start.t) * 1000).toFixed(1).padStart(14)}  ${l.text.slice(0, 110)}`);
    }
  }
  return rows.join("\n");
}
