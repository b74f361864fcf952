/**
 * Number formatting that behaves the same under Node and porffor alpha.7, whose Math.round
 * rounds halves to even (Math.round(0.5) is 0) and whose toFixed(1) loses the carry ((1.96).toFixed(1) is "1.20")
 * (tests/native/defects_prog.ts).
 */

/** JavaScript's Math.round: halves round up. */
export function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5);
}

/** Milliseconds with one decimal ("19.2"). */
export function formatMs(ms: number): string {
  const tenths = ms < 0 ? -roundHalfUp(-ms * 10) : roundHalfUp(ms * 10);
  const a = Math.abs(tenths);
  return (tenths < 0 ? "-" : "") + Math.floor(a / 10) + "." + (a % 10);
}
