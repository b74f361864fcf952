import test from "ava";
import { fixedPoint, formatMs, parseDecimal, roundHalfUp } from "../lib/numbers.js";
import { rng } from "./helpers.js";

test("fixedPoint() writes exactly the decimals asked for, rounding halves up", (t) => {
  t.is(fixedPoint(2855.4105, 3), "2855.411");
  t.is(fixedPoint(7.9, 3), "7.900");
  t.is(fixedPoint(0.0004, 3), "0.000");
  t.is(fixedPoint(0.0005, 3), "0.001");
  t.is(fixedPoint(-1.2345, 2), "-1.23");
  t.is(fixedPoint(-0.004, 2), "0.00");
  t.is(fixedPoint(3.7, 0), "4");
  t.is(formatMs(19.96), "20.0");
  t.is(formatMs(-2.25), "-2.3");
});

test("fixedPoint() of n / 10^d gives n's digits with the point put back, for 10,000 random n", (t) => {
  const next = rng(11);
  for (let i = 0; i < 10000; i++) {
    const n = (next() % 100000000) * (next() % 2 === 0 ? 1 : -1);
    const d = next() % 4;
    const digits = String(Math.abs(n)).padStart(d + 1, "0");
    const want =
      (n < 0 ? "-" : "") +
      (d === 0 ? digits : digits.slice(0, digits.length - d) + "." + digits.slice(digits.length - d));
    t.is(fixedPoint(n / 10 ** d, d), want, `${n} / 10^${d}`);
  }
});

test("parseDecimal() reads digits with one point, exactly, and nothing else", (t) => {
  t.is(parseDecimal("20", 1000), 20000);
  t.is(parseDecimal("0.5", 1000), 500);
  t.is(parseDecimal(".25", 1000), 250);
  t.is(parseDecimal("1.", 1000), 1000);
  t.is(parseDecimal("1.0015", 1000), 1002, "a half is rounded up, where parseFloat's 1.00149999... would round down");
  t.is(parseDecimal("123456789012345", 1), 123456789012345);
  for (const bad of ["", ".", "1..2", "1.2.3", "-1", "+1", "1e3", " 1", "1 ", "0x10", "1234567890123456", "١"])
    t.is(parseDecimal(bad, 1000), undefined, bad);
  t.is(roundHalfUp(2.5), 3);
});
