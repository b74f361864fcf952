// Code porffor alpha.7 compiles into a binary that runs wrongly, refused at the site with the id
// of its entry in toolchain/porffor/defects.ts. What can be seen in the syntax is refused here;
// the rest is pinned by the native conformance suite.
import ts from "typescript";
import { fail, isDestructuringTarget, isWriteTarget } from "./ast.mjs";

const refuse = (node, id, why) => fail(node, `porffor: ${id}: ${why}`);

/** The innermost function (or the source file) whose locals `node` can see. */
function scopeOf(node) {
  let n = node.parent;
  while (n && !ts.isFunctionLike(n) && !ts.isSourceFile(n)) n = n.parent;
  return n;
}

const within = (node, outer) => node.pos >= outer.pos && node.end <= outer.end;

/** Visits `node`'s subtree, not entering nested functions (their locals are other C frames). */
function walkFrame(node, visit) {
  const go = (n) => {
    visit(n);
    if (!ts.isFunctionLike(n)) ts.forEachChild(n, go);
  };
  ts.forEachChild(node, go);
}

/** A `return` in `block` that leaves the function (not one of a nested function). */
function findReturn(block) {
  let found;
  walkFrame(block, (n) => {
    if (!found && ts.isReturnStatement(n)) found = n;
  });
  return found;
}

/**
 * Locals of the try statement's own frame assigned in its `try` block and read in its `catch`
 * block: after a longjmp they may hold their value from before the `try`.
 */
function staleInCatch(node, checker) {
  const frame = scopeOf(node);
  const assigned = new Set();
  walkFrame(node.tryBlock, (n) => {
    if (!ts.isIdentifier(n) || !(isWriteTarget(n) || isDestructuringTarget(n))) return;
    const sym = checker.getSymbolAtLocation(n);
    const decl = sym?.valueDeclaration;
    if (decl && scopeOf(decl) === frame && !within(decl, node.tryBlock)) assigned.add(sym);
  });
  let read;
  if (assigned.size > 0) {
    const overwritten = (n) =>
      ts.isBinaryExpression(n.parent) &&
      n.parent.left === n &&
      n.parent.operatorToken.kind === ts.SyntaxKind.EqualsToken;
    walkFrame(node.catchClause.block, (n) => {
      if (!read && ts.isIdentifier(n) && !overwritten(n) && assigned.has(checker.getSymbolAtLocation(n))) read = n;
    });
  }
  return read;
}

/** Stops the build at the first hazard in `sf`. */
export function refuseRuntimeHazards(sf, checker) {
  const visit = (node) => {
    if (ts.isTryStatement(node)) {
      const ret = node.finallyBlock && findReturn(node.tryBlock);
      if (ret)
        refuse(
          ret,
          "try-finally-return",
          "`return` inside `try` skips the `finally` block natively; return after the try statement",
        );
      const stale = /** @type {ts.Identifier | undefined} */ (node.catchClause && staleInCatch(node, checker));
      if (stale) {
        refuse(
          stale,
          "try-catch-stale-locals",
          `\`${stale.text}\` is assigned in \`try\` and read in \`catch\`, where it is stale natively; keep it in an object`,
        );
      }
    }
    if (
      (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) &&
      node.expression.kind === ts.SyntaxKind.SuperKeyword
    ) {
      refuse(node, "super-method", "`super.m()` loses `this` natively; call a function instead");
    }
    if (ts.isHeritageClause(node) && node.token === ts.SyntaxKind.ExtendsKeyword) {
      for (const t of node.types) {
        if (ts.isIdentifier(t.expression) && t.expression.text === "Error")
          refuse(t, "extends-error", "`extends Error` loses `message` natively; extend InitError (lib/errors.ts)");
      }
    }
    if (
      ts.isComputedPropertyName(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.getText() === "Symbol.iterator"
    ) {
      refuse(node, "user-iterator", "user-defined iterators throw natively; use an array");
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
