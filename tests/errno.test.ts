import test from "ava";
import { constants } from "node:os";
import { errnoName, KernelError } from "../syscalls/errno.js";

test("errnoName() names every errno it knows as Linux does, and numbers the rest", (t) => {
  const linux = constants.errno as Record<string, number>;
  let known = 0;
  for (let n = 1; n < 200; n++) {
    const name = errnoName(n);
    if (name.startsWith("errno ")) {
      t.is(name, "errno " + n);
      continue;
    }
    known++;
    // Node's table (libuv's) lacks a few Linux names; those are checked against errno.h here.
    const elsewhere: Record<string, number> = {
      ENOTBLK: 15,
      EUCLEAN: 117,
      EREMOTEIO: 121,
      ENOMEDIUM: 123,
      ENOPKG: 65,
      ENOKEY: 126,
      EKEYEXPIRED: 127,
      EKEYREVOKED: 128,
      EKEYREJECTED: 129,
    };
    t.is(linux[name] ?? elsewhere[name], n, `${n} is ${name}`);
  }
  t.is(known, 57);
  t.is(errnoName(0), "OK");
  t.is(errnoName(40), "ELOOP");
  t.is(errnoName(41), "errno 41");
  t.is(errnoName(129), "EKEYREJECTED");
  t.is(errnoName(-1), "errno -1");
  t.is(errnoName(2.5), "errno 2.5");
  t.is(new KernelError("open", '"/x"', 2).message, 'open "/x": ENOENT');
});
