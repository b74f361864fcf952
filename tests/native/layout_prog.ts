/**
 * The porffor value layout syscalls/shim.h relies on, read back from C. Native only: the
 * expected lines are what the JS side knows about the same values.
 */
import type { Kernel } from "../../syscalls/kernel.js";

Porffor.c`#include "shim.h"`;

export function run(_k: Kernel, _scratch: string): string[] {
  const out: string[] = [];
  const c_whole = new Uint8Array([10, 11, 12, 13, 14, 15, 16, 17]);
  const c_view = c_whole.subarray(3, 6);
  let c_len = 0;
  let c_first = 0;
  let c_type = 0;
  Porffor.c`SETNUM(c_len, BUFLEN(c_view)); SETNUM(c_first, BUF(c_view)[0]); SETNUM(c_type, c_view.type);`;
  out.push(
    "subarray: type " +
      c_type +
      " length " +
      c_len +
      " first " +
      c_first +
      " (js: length " +
      c_view.length +
      " first " +
      c_view[0] +
      ")",
  );
  Porffor.c`BUF(c_view)[1] = 99;`;
  out.push("write through view: " + c_whole[4]);
  const c_num = 1234.5;
  let c_back = 0;
  Porffor.c`SETNUM(c_back, NUM(c_num) * 2);`;
  out.push("number round trip: " + c_back);
  return out;
}
