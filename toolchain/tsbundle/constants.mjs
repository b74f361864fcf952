// Constants and defines: top-level constants the program only reads become literals at every
// read, as with a `const enum`, so nothing is built at run time (a codegen hint for porffor,
// which reads a global or looks a property up where a literal costs nothing).
import ts from "typescript";
import { f, isDestructuringTarget, isWriteTarget, num, unwrap } from "./ast.mjs";

/** The value of an expression of literals and arithmetic, or undefined. */
/** @param {(id: ts.Identifier) => string | number | undefined} [known] */
export function constantValue(e, known = (_id) => undefined) {
  e = unwrap(e);
  if (ts.isIdentifier(e)) return known(e);
  if (ts.isNumericLiteral(e)) return Number(e.text);
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
  if (ts.isPrefixUnaryExpression(e)) {
    const v = constantValue(e.operand, known);
    if (typeof v !== "number") return undefined;
    if (e.operator === ts.SyntaxKind.MinusToken) return -v;
    if (e.operator === ts.SyntaxKind.TildeToken) return ~v;
    return undefined;
  }
  if (ts.isBinaryExpression(e)) {
    const l = constantValue(e.left, known);
    const r = constantValue(e.right, known);
    if (e.operatorToken.kind === ts.SyntaxKind.PlusToken && (typeof l === "string" || typeof r === "string")) {
      return l === undefined || r === undefined ? undefined : String(l) + String(r);
    }
    if (typeof l !== "number" || typeof r !== "number") return undefined;
    switch (e.operatorToken.kind) {
      case ts.SyntaxKind.LessThanLessThanToken:
        return l << r;
      case ts.SyntaxKind.GreaterThanGreaterThanToken:
        return l >> r;
      case ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken:
        return l >>> r;
      case ts.SyntaxKind.BarToken:
        return l | r;
      case ts.SyntaxKind.AmpersandToken:
        return l & r;
      case ts.SyntaxKind.CaretToken:
        return l ^ r;
      case ts.SyntaxKind.PlusToken:
        return l + r;
      case ts.SyntaxKind.MinusToken:
        return l - r;
      case ts.SyntaxKind.AsteriskToken:
        return l * r;
      default:
        return undefined;
    }
  }
  return undefined;
}

export const literal = (v) => (typeof v === "string" ? f.createStringLiteral(v) : num(v));

/**
 * Top-level constants the program only ever reads: `const N = <literal or arithmetic>` and
 * `const X = { K: <constant>, ... }` (flag and ioctl tables) read only as `X.K`.
 * symbol -> { value } or { values: Map(K -> value) }, with the declaring statement. Each read
 * becomes its literal, as with a `const enum`, and nothing is built at run time (porffor reads a
 * global or looks a property up where a literal costs nothing).
 */
export function constantObjects(files, checker, targetSymbol) {
  const found = new Map();
  const known = (id) => found.get(targetSymbol(id))?.value;
  for (const sf of files) {
    for (const st of sf.statements) {
      if (!ts.isVariableStatement(st) || !(st.declarationList.flags & ts.NodeFlags.Const)) continue;
      if (st.declarationList.declarations.length !== 1) continue;
      const d = st.declarationList.declarations[0];
      if (!ts.isIdentifier(d.name) || !d.initializer) continue;
      const sym = checker.getSymbolAtLocation(d.name);
      const scalar = constantValue(d.initializer, known);
      if (scalar !== undefined) {
        found.set(sym, { value: scalar, statement: st });
        continue;
      }
      if (!ts.isObjectLiteralExpression(unwrap(d.initializer))) continue;
      const values = new Map();
      const ok = unwrap(d.initializer).properties.every((p) => {
        if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) return false;
        const v = constantValue(p.initializer, known);
        if (v === undefined) return false;
        values.set(p.name.text, v);
        return true;
      });
      if (ok) found.set(sym, { values, statement: st });
    }
  }
  const inTypeQuery = (n) => {
    for (let p = n.parent; p; p = p.parent) if (ts.isTypeQueryNode(p)) return true;
    return false;
  };
  for (const sf of files) {
    const walk = (node) => {
      if (ts.isIdentifier(node)) {
        const sym = targetSymbol(node);
        const c = sym && found.get(sym);
        if (c) {
          const p = node.parent;
          const declaration = ts.isVariableDeclaration(p) && p.name === node;
          const moduleSyntax = ts.isImportSpecifier(p) || ts.isExportSpecifier(p);
          const read = c.values
            ? ts.isPropertyAccessExpression(p) &&
              p.expression === node &&
              c.values.has(p.name.text) &&
              !isWriteTarget(p)
            : !isWriteTarget(node) && !isDestructuringTarget(node);
          if (!declaration && !moduleSyntax && !read && !inTypeQuery(node)) found.delete(sym);
        }
      }
      ts.forEachChild(node, walk);
    };
    walk(sf);
  }
  return found;
}
