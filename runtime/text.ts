// String helpers in place of built-ins that cost the init more than they do here: porffor's
// split also handles RegExp separators, so calling it links porffor's whole regex engine (about
// 22 KiB) into the init; its Array.prototype.sort is general code a boot would run only to
// order a directory listing (translated once under QEMU's TCG: about 60 basic blocks).

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

/**
 * Whether `a` sorts after `b` by UTF-16 code units. Not `a > b`: porffor compares a string with
 * characters above U+00FF and one without wrongly (tests/native/defects_prog.ts).
 */
function after(a: string, b: string): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x > y;
  }
  return a.length > b.length;
}

/**
 * Sorts `a` in place by UTF-16 code units and returns it, as `a.sort()` does for strings.
 * Insertion sort: the lists are directory listings of a few dozen names.
 */
export function sortStrings(a: string[]): string[] {
  for (let i = 1; i < a.length; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && after(a[j], v)) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
  return a;
}
