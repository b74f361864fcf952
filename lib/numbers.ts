/**
 * Number formatting and parsing that behaves the same under Node and natively, where Math.round
 * rounds halves to even (porffor: math-round-half) and toFixed loses the carry
 * (porffor: tofixed-carry). Integer arithmetic only: porffor turns a fractional number into text through
 * printf("%.*g") and strtod, code a boot does not otherwise run (each function run for the
 * first time costs its translation under QEMU's TCG). Pure.
 */

/** JavaScript's Math.round: halves round up. */
export function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5);
}

/** `x` with exactly `decimals` digits after the point, rounded half up ("19.2" for 19.23, 1). */
export function fixedPoint(x: number, decimals: number): string {
  let scale = 1;
  for (let i = 0; i < decimals; i++) scale *= 10;
  const units = x < 0 ? -roundHalfUp(-x * scale) : roundHalfUp(x * scale);
  const a = Math.abs(units);
  let frac = String(a % scale);
  while (frac.length < decimals) frac = "0" + frac;
  return (units < 0 ? "-" : "") + Math.floor(a / scale) + (decimals > 0 ? "." + frac : "");
}

/** Milliseconds with one decimal ("19.2"). */
export function formatMs(ms: number): string {
  return fixedPoint(ms, 1);
}

/**
 * A decimal number written as digits with at most one point ("20", "0.5", ".25"), times `scale`
 * and rounded half up to an integer; undefined for anything else. Exact: the digits are summed
 * as integers (at most 15 of them), never through a binary fraction.
 */
export function parseDecimal(text: string, scale: number): number | undefined {
  let whole = 0;
  let frac = 0;
  let div = 1;
  let dot = false;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 && !dot) {
      dot = true;
      continue;
    }
    if (c < 48 || c > 57 || ++digits > 15) return undefined;
    if (dot) {
      frac = frac * 10 + (c - 48);
      div *= 10;
    } else whole = whole * 10 + (c - 48);
  }
  if (digits === 0) return undefined;
  return whole * scale + roundHalfUp((frac * scale) / div);
}
