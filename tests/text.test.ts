import test from "ava";
import { replaceText, splitText } from "../lib/text.js";
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
