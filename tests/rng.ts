/** A small deterministic generator (LCG), so that a failing random input can be reproduced. No Node imports: the native programs use it too. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}
