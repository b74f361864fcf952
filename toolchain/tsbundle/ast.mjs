// Shared by the bundler's passes: the TypeScript factory, errors with file and line, and
// questions about expressions (pure? written?).
import ts from "typescript";
import { relative } from "node:path";

export const f = ts.factory;

export class BundleError extends Error {}

export function where(node) {
  const sf = node.getSourceFile();
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `${relative(process.cwd(), sf.fileName)}:${line + 1}`;
}

export function fail(node, why) {
  throw new BundleError(`${where(node)}: ${why}`);
}

/** Expressions whose evaluation has no effects, so that two of them may be evaluated in either order. */
export function isPure(e) {
  if (
    ts.isParenthesizedExpression(e) ||
    ts.isAsExpression(e) ||
    ts.isNonNullExpression(e) ||
    ts.isSatisfiesExpression(e)
  ) {
    return isPure(e.expression);
  }
  if (
    ts.isIdentifier(e) ||
    ts.isLiteralExpression(e) ||
    e.kind === ts.SyntaxKind.ThisKeyword ||
    e.kind === ts.SyntaxKind.TrueKeyword ||
    e.kind === ts.SyntaxKind.FalseKeyword ||
    e.kind === ts.SyntaxKind.NullKeyword
  ) {
    return true;
  }
  if (ts.isPropertyAccessExpression(e)) return isPure(e.expression);
  if (ts.isElementAccessExpression(e)) return isPure(e.expression) && isPure(e.argumentExpression);
  if (ts.isPrefixUnaryExpression(e)) {
    return (
      e.operator !== ts.SyntaxKind.PlusPlusToken && e.operator !== ts.SyntaxKind.MinusMinusToken && isPure(e.operand)
    );
  }
  if (ts.isTypeOfExpression(e)) return isPure(e.expression);
  if (ts.isConditionalExpression(e)) return isPure(e.condition) && isPure(e.whenTrue) && isPure(e.whenFalse);
  if (ts.isBinaryExpression(e)) {
    const k = e.operatorToken.kind;
    const assigns = k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
    return !assigns && k !== ts.SyntaxKind.CommaToken && isPure(e.left) && isPure(e.right);
  }
  return false;
}

export const unwrap = (e) => {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression;
  return e;
};

export const hasModifier = (node, kind) =>
  ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);

export const isWriteTarget = (node) => {
  const p = node.parent;
  if (ts.isBinaryExpression(p) && p.left === node) {
    const k = p.operatorToken.kind;
    return k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
  }
  return (
    ((ts.isPrefixUnaryExpression(p) || ts.isPostfixUnaryExpression(p)) &&
      (p.operator === ts.SyntaxKind.PlusPlusToken || p.operator === ts.SyntaxKind.MinusMinusToken)) ||
    ts.isDeleteExpression(p)
  );
};

/** A name written by a destructuring assignment or a for-of/for-in head. */
export function isDestructuringTarget(id) {
  let n = id;
  while (
    ts.isArrayLiteralExpression(n.parent) ||
    ts.isObjectLiteralExpression(n.parent) ||
    ts.isPropertyAssignment(n.parent) ||
    ts.isShorthandPropertyAssignment(n.parent) ||
    ts.isSpreadElement(n.parent)
  )
    n = n.parent;
  const p = n.parent;
  return (
    (n !== id && ts.isBinaryExpression(p) && p.left === n && p.operatorToken.kind === ts.SyntaxKind.EqualsToken) ||
    ((ts.isForOfStatement(p) || ts.isForInStatement(p)) && p.initializer === n)
  );
}

export const paren = (e) => f.createParenthesizedExpression(e);
export const binary = (l, op, r) => f.createBinaryExpression(paren(l), op, paren(r));
export const num = (v) =>
  v < 0
    ? f.createPrefixUnaryExpression(ts.SyntaxKind.MinusToken, f.createNumericLiteral(-v))
    : f.createNumericLiteral(v);
