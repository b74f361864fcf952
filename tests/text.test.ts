import test from "ava";
import { replaceText, sortStrings, splitText } from "../runtime/text.js";
import { rng } from "./helpers.js";

function randomText(next: () => number, alphabet: string, max: number): string {
  let s = "";
  const len = next() % max;
  for (let i = 0; i < len; i++) s += alphabet[next() % alphabet.length];
  return s;
}

test("splitText() and replaceText() agree with split and replaceAll on 10,000 random strings", (t) => {
  const next = rng(3);
  for (let i = 0; i < 10000; i++) {
    const s = randomText(next, "ab,-\u00e9", 20);
    const sep = [",", "-", "ab", "\u00e9"][next() % 4];
    t.deepEqual(splitText(s, sep), s.split(sep));
    t.is(replaceText(s, sep, "+"), s.split(sep).join("+"));
  }
});

test("sortStrings() orders like Array.prototype.sort, in place, for 2,000 random lists", (t) => {
  const next = rng(5);
  t.deepEqual(sortStrings(["vdb", "vda1", "vda", "nvme0n1p10", "nvme0n1p2"]), ["nvme0n1p10", "nvme0n1p2", "vda", "vda1", "vdb"]);
  for (let i = 0; i < 2000; i++) {
    const list: string[] = [];
    const n = next() % 30;
    for (let j = 0; j < n; j++) list.push(randomText(next, "ab0\u00e9\u20acZ", 6));
    const expected = [...list].sort();
    const sorted = sortStrings(list);
    t.is(sorted, list);
    t.deepEqual(sorted, expected);
  }
});
