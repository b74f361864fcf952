// What porffor alpha.7's TypeScript parser misreads, rewritten into what it reads right
// (porffor defects of kind "parser", toolchain/porffor/defects.ts).
import ts from "typescript";
import { binary, f, fail, isPure, num } from "./ast.mjs";
import { constantValue } from "./constants.mjs";

export const isLiteral = (e) =>
  ts.isNumericLiteral(e) ||
  ts.isStringLiteral(e) ||
  (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.MinusToken && ts.isNumericLiteral(e.operand));

/**
 * porffor's TypeScript parser takes `({` and `([` for the start of an arrow function's typed
 * parameter list and does not backtrack, so parenthesized object and array literals lose their
 * parentheses (an arrow function returning one gets a block body) (porffor: parser-paren-literal).
 */
export const unparen = (e) => (ts.isParenthesizedExpression(e) ? unparen(e.expression) : e);
export const isObjectOrArray = (e) =>
  ts.isObjectLiteralExpression(unparen(e)) || ts.isArrayLiteralExpression(unparen(e));

/**
 * porffor alpha.7 reads TypeScript with a tokenizer that takes every `<` for the start of type
 * arguments, so `a < b` and `a << b` do not parse (porffor: parser-less-than, and porffor: parser-shift-left). `a < b` becomes `b > a` (operands that may be
 * evaluated in either order only); `a << k` with a literal k becomes `((a | 0) * 2**k) | 0`, which
 * is exact: the product of an int32 and a power of two is exact in a double, and `| 0` takes it
 * modulo 2^32 like the shift does.
 */
export function rewriteLess(node) {
  const k = node.operatorToken.kind;
  if (k === ts.SyntaxKind.LessThanToken) {
    if (!(isLiteral(node.left) || isLiteral(node.right) || (isPure(node.left) && isPure(node.right)))) {
      fail(
        node,
        "`<` between operands with side effects cannot be reordered for porffor; compute one into a const first",
      );
    }
    return binary(node.right, ts.SyntaxKind.GreaterThanToken, node.left);
  }
  if (k === ts.SyntaxKind.LessThanLessThanToken) {
    if (!ts.isNumericLiteral(node.right)) fail(node, "`<<` needs a literal shift count for porffor");
    const shift = Number(node.right.text) & 31;
    const folded = constantValue(node);
    if (typeof folded === "number") return num(folded);
    const int = binary(node.left, ts.SyntaxKind.BarToken, f.createNumericLiteral(0));
    return binary(
      binary(int, ts.SyntaxKind.AsteriskToken, f.createNumericLiteral(2 ** shift)),
      ts.SyntaxKind.BarToken,
      f.createNumericLiteral(0),
    );
  }
  if (k === ts.SyntaxKind.LessThanLessThanEqualsToken)
    fail(node, "`<<=` does not parse in porffor; write `x = x << k`");
  return node;
}
