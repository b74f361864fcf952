import test from "ava";
import { jsonString, quote } from "../lib/quote.js";
import { rng } from "./helpers.js";

test("quote() keeps printable ASCII and escapes everything else", (t) => {
  t.is(quote("/dev/vda1"), '"/dev/vda1"');
  t.is(quote('a"b\\c'), '"a\\"b\\\\c"');
  t.is(quote("\x1b[2J\n"), '"\\x1b[2J\\x0a"');
  t.is(quote("é€"), '"\\xe9\\u20ac"');
});

test("quote() of 10,000 random strings holds only printable ASCII and reads back", (t) => {
  const next = rng(7);
  for (let i = 0; i < 10000; i++) {
    let s = "";
    for (let n = next() % 12; n > 0; n--) s += String.fromCharCode(next() % 3 === 0 ? next() % 0x10000 : next() % 128);
    const q = quote(s);
    t.regex(q, /^"[\x20-\x7e]*"$/);
    const back = q
      .slice(1, -1)
      .replace(/\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.)/g, (_m, e: string) =>
        e.length === 1 ? e : String.fromCharCode(parseInt(e.slice(1), 16)),
      );
    if (back !== s) t.fail(`${JSON.stringify(s)} -> ${q}`);
  }
});

test("jsonString() of 10,000 random strings is ASCII JSON that JSON.parse reads back", (t) => {
  const next = rng(11);
  t.is(jsonString('a"\\\x01é'), '"a\\"\\\\\\u0001\\u00e9"');
  for (let i = 0; i < 10000; i++) {
    let s = "";
    for (let n = next() % 12; n > 0; n--) s += String.fromCharCode(next() % 3 === 0 ? next() % 0x10000 : next() % 128);
    const j = jsonString(s);
    t.regex(j, /^"[\x20-\x7e]*"$/);
    if (JSON.parse(j) !== s) t.fail(`${JSON.stringify(s)} -> ${j}`);
  }
});
