/**
 * A root hash as text: the hex digest that pins a dm-verity tree, whether the kernel command line
 * gives it (`roothash=`), a root-verity-sig partition carries it or the build writes it into a
 * UKI (`node build.mjs --roothash`). One check for all three. Pure.
 */
import { isHex } from "./hex.js";
import { quote } from "./quote.js";

/**
 * Checks a root hash: hex, an even number of digits, 32 to 128 digits (SHA-1 is 40, SHA-256 64,
 * SHA-512 128). Returns the lower-case hash, or what is wrong with it ("has 16 digits; expected
 * 32 to 128"), for the caller to put after the name of where the hash came from.
 */
export function checkRootHash(value: string): { hash?: string; error?: string } {
  if (value.length === 0) return { error: "is empty" };
  if (!isHex(value)) return { error: "is not hexadecimal: " + quote(value) };
  if (value.length % 2 !== 0) return { error: "has an odd number of digits (" + value.length + ")" };
  if (value.length < 32 || value.length > 128) {
    return { error: "has " + value.length + " digits; expected 32 to 128" };
  }
  return { hash: value.toLowerCase() };
}
