// Trusted annotations: locals declared without a type get the one the checker infers, where
// porffor may rely on it (a codegen hint: porffor compiles typed locals into typed C).
import ts from "typescript";
import { f, isDestructuringTarget, isWriteTarget } from "./ast.mjs";

/**
 * A type annotation porffor can compile to typed C, for a value of this type, or undefined.
 * The types come from a program with noUncheckedIndexedAccess, so `a[i]` is never claimed to be
 * a plain number or string: out of range it is undefined, and a typed local would make it 0.
 */
export function trustedTypeNode(type, checker) {
  const t = checker.getBaseTypeOfLiteralType(type);
  if (t.flags & ts.TypeFlags.Boolean) return f.createKeywordTypeNode(ts.SyntaxKind.BooleanKeyword);
  if (t.flags & ts.TypeFlags.Union) return undefined;
  if (t.flags & ts.TypeFlags.Number) return f.createKeywordTypeNode(ts.SyntaxKind.NumberKeyword);
  if (t.flags & ts.TypeFlags.String) return f.createKeywordTypeNode(ts.SyntaxKind.StringKeyword);
  if (!(t.flags & ts.TypeFlags.Object)) return undefined;
  if (t.symbol?.name === "Uint8Array") return f.createTypeReferenceNode("Uint8Array");
  // Containers: porffor needs to know the container, not its elements (read as they come).
  const unknown = () => f.createKeywordTypeNode(ts.SyntaxKind.UnknownKeyword);
  if (checker.isArrayType(t)) return f.createArrayTypeNode(unknown());
  if (t.symbol?.name === "Map") return f.createTypeReferenceNode("Map", [unknown(), unknown()]);
  if (t.symbol?.name === "Set") return f.createTypeReferenceNode("Set", [unknown()]);
  return undefined;
}

const typeKind = (node) =>
  node &&
  (node.kind === ts.SyntaxKind.TypeReference
    ? node.typeName.text
    : node.kind === ts.SyntaxKind.ArrayType
      ? "[]"
      : node.kind);

/**
 * The annotation for a `const`/`let` declared without one, when porffor may rely on it: the
 * initializer's type is trusted and, for `let`, every later assignment keeps that type.
 */
export function inferredAnnotation(decl, checker, targetSymbol) {
  if (decl.type || !decl.initializer || !ts.isIdentifier(decl.name)) return undefined;
  const list = decl.parent;
  if (!ts.isVariableDeclarationList(list) || ts.isForOfStatement(list.parent) || ts.isForInStatement(list.parent))
    return undefined;
  const node = trustedTypeNode(checker.getTypeAtLocation(decl.initializer), checker);
  if (!node || list.flags & ts.NodeFlags.Const) return node;
  const sym = checker.getSymbolAtLocation(decl.name);
  const kind = typeKind(node);
  const sameKind = (e) => typeKind(trustedTypeNode(checker.getTypeAtLocation(e), checker)) === kind;
  let safe = true;
  const walk = (n) => {
    if (!safe) return;
    if (ts.isIdentifier(n) && n !== decl.name && targetSymbol(n) === sym) {
      const p = n.parent;
      if (ts.isBinaryExpression(p) && p.left === n) {
        const k = p.operatorToken.kind;
        if (
          k === ts.SyntaxKind.EqualsToken ||
          k === ts.SyntaxKind.BarBarEqualsToken ||
          k === ts.SyntaxKind.AmpersandAmpersandEqualsToken ||
          k === ts.SyntaxKind.QuestionQuestionEqualsToken
        )
          safe = sameKind(p.right);
        else if (k === ts.SyntaxKind.PlusEqualsToken) safe = kind === ts.SyntaxKind.StringKeyword || sameKind(p.right);
        else if (k >= ts.SyntaxKind.FirstCompoundAssignment && k <= ts.SyntaxKind.LastCompoundAssignment)
          safe = kind === ts.SyntaxKind.NumberKeyword;
      } else if (isWriteTarget(n)) {
        safe = kind === ts.SyntaxKind.NumberKeyword && !ts.isDeleteExpression(p);
      } else if (isDestructuringTarget(n)) {
        safe = false;
      }
    }
    ts.forEachChild(n, walk);
  };
  walk(ts.isVariableStatement(list.parent) ? list.parent.parent : list.parent); // the `let`'s scope
  return safe ? node : undefined;
}
