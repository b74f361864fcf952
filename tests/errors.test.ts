import test from "ava";
import { errnoOf, errorText, InitError, ParseError, withContext } from "../lib/errors.js";
import { Errno, isErrno, KernelError } from "../syscalls/errno.js";

test("InitError is the base of ParseError and KernelError", (t) => {
  const p = new ParseError("no GPT");
  t.true(p instanceof InitError);
  t.is(p.message, "no GPT");
  t.is(p.errno, 0);
  const k = new KernelError("open", '"/x"', Errno.ENOENT);
  t.true(k instanceof InitError);
  t.is(k.message, 'open "/x": ENOENT');
});

test("withContext() puts what was done in front and keeps the cause's errno", (t) => {
  const e = withContext("attach the root partition", new KernelError("ioctl", "LOOP_CONFIGURE", Errno.EBUSY));
  t.is(e.message, "attach the root partition: ioctl LOOP_CONFIGURE: EBUSY");
  t.is(e.errno, Errno.EBUSY);
  t.true(isErrno(e, Errno.EBUSY), "isErrno follows through the wrap");
  t.is(withContext("a", withContext("b", new KernelError("read", "fd 3", Errno.EIO))).errno, Errno.EIO);
  t.is(withContext("parse", new ParseError("bad")).errno, 0, "no errno is invented");
});

test("errorText() and errnoOf() take anything thrown", (t) => {
  t.is(errorText(new InitError("x")), "x");
  t.is(errorText(new Error("y")), "y");
  t.is(errorText("plain"), "plain");
  t.is(errorText(undefined), "undefined");
  t.is(errorText({ message: 3 }), "[object Object]");
  t.is(errnoOf(new Error("y")), 0);
  t.is(errnoOf(new KernelError("x", "y", 5)), 5);
});
