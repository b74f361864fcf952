// String splitting without String.prototype.split: porffor's split also handles RegExp
// separators, so calling it links porffor's whole regex engine into the init.

/** `s` cut at every occurrence of `sep` (not empty), as `s.split(sep)` does. */
export function splitText(s: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = s.indexOf(sep, start);
    if (i < 0) {
      out.push(s.slice(start));
      return out;
    }
    out.push(s.slice(start, i));
    start = i + sep.length;
  }
}

/** `s` with every `from` (not empty) replaced by `to`. */
export function replaceText(s: string, from: string, to: string): string {
  return splitText(s, from).join(to);
}
