// Bundles TypeScript modules into one TypeScript file for porffor, keeping the type annotations.
//
// Why not esbuild here: esbuild strips types, and porffor compiles annotated code into typed C
// (a `b: Uint8Array` parameter makes `b[i]` one load instead of a dispatch over every value type).
// The annotations are checked by `tsc --noEmit` (strict) before any build, so porffor can rely on
// them. esbuild still bundles everything that runs under Node.
//
// What it does: orders the modules reachable from the entry (dependencies first), drops imports,
// exports, `declare`s and declarations nothing uses, gives every top-level declaration one
// bundle-wide name (renaming on collision, resolved through the type checker, so
// `import { a as b }` works), inlines constants and defines, annotates locals with the types
// the checker infers where porffor may rely on them, and rewrites what porffor's TypeScript
// parser misreads. Anything it cannot translate exactly stops the build with the file and line.

import ts from "typescript";
import { dirname, relative } from "node:path";

const f = ts.factory;

class BundleError extends Error {}

function where(node) {
  const sf = node.getSourceFile();
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `${relative(process.cwd(), sf.fileName)}:${line + 1}`;
}

function fail(node, why) {
  throw new BundleError(`${where(node)}: ${why}`);
}

function compilerOptions(tsconfig) {
  const read = ts.readConfigFile(tsconfig, ts.sys.readFile);
  if (read.error) throw new BundleError(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  return ts.parseJsonConfigFileContent(read.config, ts.sys, dirname(tsconfig)).options;
}

/** Source files reachable from the entry, each after the modules it imports. */
function moduleOrder(program, entry, options) {
  const order = [];
  const seen = new Set();
  const visit = (sf) => {
    if (seen.has(sf.fileName)) return; // done, or a cycle: the first visit orders it
    seen.add(sf.fileName);
    for (const st of sf.statements) {
      const spec = (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier;
      if (!spec) continue;
      const resolved = ts.resolveModuleName(spec.text, sf.fileName, options, ts.sys).resolvedModule;
      if (!resolved) fail(st, `cannot resolve "${spec.text}"`);
      if (resolved.isExternalLibraryImport) fail(st, `"${spec.text}" is a package: porffor builds bundle project modules only`);
      if (resolved.extension === ".d.ts") continue;
      visit(program.getSourceFile(resolved.resolvedFileName));
    }
    order.push(sf);
  };
  const sf = program.getSourceFile(entry);
  if (!sf) throw new BundleError(`${entry}: not found`);
  visit(sf);
  return order;
}

function declaredNames(st) {
  if (ts.isVariableStatement(st)) {
    const names = [];
    const walk = (b) => {
      if (ts.isIdentifier(b)) names.push(b);
      else for (const e of b.elements) if (!ts.isOmittedExpression(e)) walk(e.name);
    };
    for (const d of st.declarationList.declarations) walk(d.name);
    return names;
  }
  if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) ||
       ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) && st.name) return [st.name];
  return [];
}

/**
 * The declared symbol an identifier, or the value of a `{ a }` shorthand, refers to: through
 * `import { a as b }` and re-exports to the declaration itself.
 */
function referencedSymbol(checker, node) {
  const sym = ts.isShorthandPropertyAssignment(node) ? checker.getShorthandAssignmentValueSymbol(node) : checker.getSymbolAtLocation(node);
  return sym && sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
}

const hasModifier = (node, kind) => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);

/** One bundle-wide name per top-level symbol; the first module to declare a name keeps it. */
function bundleNames(files, checker) {
  const names = new Map(); // symbol -> name
  const taken = new Set();
  for (const sf of files) {
    for (const st of sf.statements) {
      if (hasModifier(st, ts.SyntaxKind.DeclareKeyword)) continue;
      if (hasModifier(st, ts.SyntaxKind.DefaultKeyword)) fail(st, "default exports are not bundled; use a named export");
      for (const id of declaredNames(st)) {
        const sym = checker.getSymbolAtLocation(id);
        if (!sym) fail(id, `no symbol for ${id.text}`);
        let name = id.text;
        for (let n = 2; taken.has(name); n++) name = `${id.text}_${n}`;
        taken.add(name);
        names.set(sym, name);
      }
    }
  }
  return names;
}

/** Expressions whose evaluation has no effects, so that two of them may be evaluated in either order. */
function isPure(e) {
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) {
    return isPure(e.expression);
  }
  if (ts.isIdentifier(e) || ts.isLiteralExpression(e) || e.kind === ts.SyntaxKind.ThisKeyword ||
      e.kind === ts.SyntaxKind.TrueKeyword || e.kind === ts.SyntaxKind.FalseKeyword || e.kind === ts.SyntaxKind.NullKeyword) {
    return true;
  }
  if (ts.isPropertyAccessExpression(e)) return isPure(e.expression);
  if (ts.isElementAccessExpression(e)) return isPure(e.expression) && isPure(e.argumentExpression);
  if (ts.isPrefixUnaryExpression(e)) {
    return e.operator !== ts.SyntaxKind.PlusPlusToken && e.operator !== ts.SyntaxKind.MinusMinusToken && isPure(e.operand);
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

const isLiteral = (e) => ts.isNumericLiteral(e) || ts.isStringLiteral(e) ||
  (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.MinusToken && ts.isNumericLiteral(e.operand));

/**
 * porffor's TypeScript parser takes `({` and `([` for the start of an arrow function's typed
 * parameter list and does not backtrack, so parenthesized object and array literals lose their
 * parentheses (an arrow function returning one gets a block body).
 */
const unparen = (e) => (ts.isParenthesizedExpression(e) ? unparen(e.expression) : e);
const isObjectOrArray = (e) => ts.isObjectLiteralExpression(unparen(e)) || ts.isArrayLiteralExpression(unparen(e));

const paren = (e) => f.createParenthesizedExpression(e);
const binary = (l, op, r) => f.createBinaryExpression(paren(l), op, paren(r));
const num = (v) => (v < 0 ? f.createPrefixUnaryExpression(ts.SyntaxKind.MinusToken, f.createNumericLiteral(-v)) : f.createNumericLiteral(v));

/**
 * porffor alpha.7 reads TypeScript with a tokenizer that takes every `<` for the start of type
 * arguments, so `a < b` and `a << b` do not parse. `a < b` becomes `b > a` (operands that may be
 * evaluated in either order only); `a << k` with a literal k becomes `((a | 0) * 2**k) | 0`, which
 * is exact: the product of an int32 and a power of two is exact in a double, and `| 0` takes it
 * modulo 2^32 like the shift does.
 */
function rewriteLess(node) {
  const k = node.operatorToken.kind;
  if (k === ts.SyntaxKind.LessThanToken) {
    if (!(isLiteral(node.left) || isLiteral(node.right) || (isPure(node.left) && isPure(node.right)))) {
      fail(node, "`<` between operands with side effects cannot be reordered for porffor; compute one into a const first");
    }
    return binary(node.right, ts.SyntaxKind.GreaterThanToken, node.left);
  }
  if (k === ts.SyntaxKind.LessThanLessThanToken) {
    if (!ts.isNumericLiteral(node.right)) fail(node, "`<<` needs a literal shift count for porffor");
    const shift = Number(node.right.text) & 31;
    const folded = constantValue(node);
    if (typeof folded === "number") return num(folded);
    const int = binary(node.left, ts.SyntaxKind.BarToken, f.createNumericLiteral(0));
    return binary(binary(int, ts.SyntaxKind.AsteriskToken, f.createNumericLiteral(2 ** shift)), ts.SyntaxKind.BarToken, f.createNumericLiteral(0));
  }
  if (k === ts.SyntaxKind.LessThanLessThanEqualsToken) fail(node, "`<<=` does not parse in porffor; write `x = x << k`");
  return node;
}

/**
 * porffor ignores TypeScript's parameter properties (`constructor(private k: Kernel)` leaves
 * `this.k` undefined): they become assignments at the start of the constructor, after `super()`.
 */
function lowerParameterProperties(ctor) {
  const assigns = [];
  const params = ctor.parameters.map((p) => {
    if (!ts.getModifiers(p)?.length) return p;
    if (!ts.isIdentifier(p.name)) fail(p, "a parameter property must be a plain name");
    assigns.push(f.createExpressionStatement(f.createAssignment(
      f.createPropertyAccessExpression(f.createThis(), p.name.text), f.createIdentifier(p.name.text))));
    return f.updateParameterDeclaration(p, undefined, p.dotDotDotToken, p.name, p.questionToken, p.type, p.initializer);
  });
  const body = ctor.body.statements;
  const isSuper = (st) => ts.isExpressionStatement(st) && ts.isCallExpression(st.expression) && st.expression.expression.kind === ts.SyntaxKind.SuperKeyword;
  const at = body.findIndex(isSuper) + 1;
  const statements = [...body.slice(0, at), ...assigns, ...body.slice(at)];
  return f.updateConstructorDeclaration(ctor, ctor.modifiers, params, f.updateBlock(ctor.body, statements));
}

const unwrap = (e) => {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression;
  return e;
};

/** Initializers that may be dropped with their variable when nothing uses it. */
function isPureInit(e) {
  if (!e) return true;
  e = unwrap(e);
  if (ts.isArrowFunction(e) || ts.isFunctionExpression(e) || ts.isClassExpression(e)) return true;
  if (ts.isObjectLiteralExpression(e)) {
    return e.properties.every((p) => (ts.isPropertyAssignment(p) && !ts.isComputedPropertyName(p.name) && isPureInit(p.initializer)) ||
      ts.isShorthandPropertyAssignment(p) || ts.isMethodDeclaration(p));
  }
  if (ts.isArrayLiteralExpression(e)) return e.elements.every((x) => !ts.isSpreadElement(x) && isPureInit(x));
  return isPure(e);
}

/**
 * Top-level statements that the program needs: every statement with effects (those are kept in
 * order), and every declaration they reach, transitively. Types and interfaces are always kept;
 * they produce no code and porffor reads them.
 */
function liveStatements(files, checker, constants) {
  const declaredBy = new Map(); // symbol -> statement
  const all = [];
  for (const sf of files) {
    for (const st of sf.statements) {
      if (ts.isImportDeclaration(st) || ts.isExportDeclaration(st) || hasModifier(st, ts.SyntaxKind.DeclareKeyword)) continue;
      all.push(st);
      for (const id of declaredNames(st)) {
        const sym = checker.getSymbolAtLocation(id);
        if (!constants.has(sym)) declaredBy.set(sym, st); // constant objects are inlined, never needed
      }
    }
  }
  const live = new Set();
  const queue = [];
  const mark = (st) => {
    if (!live.has(st)) { live.add(st); queue.push(st); }
  };
  for (const st of all) {
    const declaration = ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) ||
      (ts.isVariableStatement(st) && st.declarationList.declarations.every((d) => isPureInit(d.initializer)));
    if (!declaration) mark(st);
  }
  while (queue.length > 0) {
    const st = queue.pop();
    const walk = (node) => {
      if (ts.isIdentifier(node) || ts.isShorthandPropertyAssignment(node)) {
        const target = declaredBy.get(referencedSymbol(checker, node));
        if (target) mark(target);
      }
      ts.forEachChild(node, walk);
    };
    walk(st);
  }
  return live;
}

/** The value of an expression of literals and arithmetic, or undefined. */
function constantValue(e, known = () => undefined) {
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
      case ts.SyntaxKind.LessThanLessThanToken: return l << r;
      case ts.SyntaxKind.GreaterThanGreaterThanToken: return l >> r;
      case ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken: return l >>> r;
      case ts.SyntaxKind.BarToken: return l | r;
      case ts.SyntaxKind.AmpersandToken: return l & r;
      case ts.SyntaxKind.CaretToken: return l ^ r;
      case ts.SyntaxKind.PlusToken: return l + r;
      case ts.SyntaxKind.MinusToken: return l - r;
      case ts.SyntaxKind.AsteriskToken: return l * r;
      default: return undefined;
    }
  }
  return undefined;
}

const literal = (v) => (typeof v === "string" ? f.createStringLiteral(v) : num(v));

const isWriteTarget = (node) => {
  const p = node.parent;
  if (ts.isBinaryExpression(p) && p.left === node) {
    const k = p.operatorToken.kind;
    return k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
  }
  return ((ts.isPrefixUnaryExpression(p) || ts.isPostfixUnaryExpression(p)) &&
    (p.operator === ts.SyntaxKind.PlusPlusToken || p.operator === ts.SyntaxKind.MinusMinusToken)) ||
    ts.isDeleteExpression(p);
};

/**
 * Top-level constants the program only ever reads: `const N = <literal or arithmetic>` and
 * `const X = { K: <constant>, ... }` (flag and ioctl tables) read only as `X.K`.
 * symbol -> { value } or { values: Map(K -> value) }, with the declaring statement. Each read
 * becomes its literal, as with a `const enum`, and nothing is built at run time (porffor reads a
 * global or looks a property up where a literal costs nothing).
 */
function constantObjects(files, checker, targetSymbol) {
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
            ? ts.isPropertyAccessExpression(p) && p.expression === node && c.values.has(p.name.text) && !isWriteTarget(p)
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

/**
 * A type annotation porffor can compile to typed C, for a value of this type, or undefined.
 * The types come from a program with noUncheckedIndexedAccess, so `a[i]` is never claimed to be
 * a plain number or string: out of range it is undefined, and a typed local would make it 0.
 */
function trustedTypeNode(type, checker) {
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

const typeKind = (node) => node && (node.kind === ts.SyntaxKind.TypeReference ? node.typeName.text : node.kind === ts.SyntaxKind.ArrayType ? "[]" : node.kind);

/**
 * The annotation for a `const`/`let` declared without one, when porffor may rely on it: the
 * initializer's type is trusted and, for `let`, every later assignment keeps that type.
 */
function inferredAnnotation(decl, checker, targetSymbol) {
  if (decl.type || !decl.initializer || !ts.isIdentifier(decl.name)) return undefined;
  const list = decl.parent;
  if (!ts.isVariableDeclarationList(list) || ts.isForOfStatement(list.parent) || ts.isForInStatement(list.parent)) return undefined;
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
        if (k === ts.SyntaxKind.EqualsToken || k === ts.SyntaxKind.BarBarEqualsToken ||
            k === ts.SyntaxKind.AmpersandAmpersandEqualsToken || k === ts.SyntaxKind.QuestionQuestionEqualsToken) safe = sameKind(p.right);
        else if (k === ts.SyntaxKind.PlusEqualsToken) safe = kind === ts.SyntaxKind.StringKeyword || sameKind(p.right);
        else if (k >= ts.SyntaxKind.FirstCompoundAssignment && k <= ts.SyntaxKind.LastCompoundAssignment) safe = kind === ts.SyntaxKind.NumberKeyword;
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

/** A name written by a destructuring assignment or a for-of/for-in head. */
function isDestructuringTarget(id) {
  let n = id;
  while (ts.isArrayLiteralExpression(n.parent) || ts.isObjectLiteralExpression(n.parent) ||
         ts.isPropertyAssignment(n.parent) || ts.isShorthandPropertyAssignment(n.parent) || ts.isSpreadElement(n.parent)) n = n.parent;
  const p = n.parent;
  return (n !== id && ts.isBinaryExpression(p) && p.left === n && p.operatorToken.kind === ts.SyntaxKind.EqualsToken) ||
    ((ts.isForOfStatement(p) || ts.isForInStatement(p)) && p.initializer === n);
}

/**
 * porffor compiles a method call on a string into a dispatch over every string representation and
 * every other type that has a method of that name, at each call site (a `s.slice(a, b)` costs
 * about 300 bytes of machine code). A call on a receiver the checker types as a string becomes a
 * call of one small function per method and argument count, which holds that dispatch once:
 * `s.slice(a, b)` -> `string_slice_2(s, a, b)`. The receiver is evaluated before the arguments
 * either way. Returns the helper's name, or undefined to leave the call as written.
 */
function stringMethodHelper(call, checker, helpers, taken) {
  const callee = call.expression;
  if (!ts.isPropertyAccessExpression(callee) || callee.questionDotToken || call.questionDotToken) return undefined;
  if (call.arguments.some((a) => ts.isSpreadElement(a))) return undefined;
  const receiver = checker.getBaseTypeOfLiteralType(checker.getTypeAtLocation(callee.expression));
  if (!(receiver.flags & ts.TypeFlags.String)) return undefined;
  const method = checker.getSymbolAtLocation(callee.name);
  const declaredOn = method?.declarations?.[0]?.parent;
  if (!declaredOn || !ts.isInterfaceDeclaration(declaredOn) || declaredOn.name.text !== "String") return undefined;
  const key = `${callee.name.text}/${call.arguments.length}`;
  let helper = helpers.get(key);
  if (!helper) {
    let name = `string_${callee.name.text}_${call.arguments.length}`;
    for (let n = 2; taken.has(name); n++) name = `string_${callee.name.text}_${call.arguments.length}_${n}`;
    taken.add(name);
    const params = call.arguments.map((_, i) => `a${i}`);
    helper = { name, text: `function ${name}(s: string${params.map((p) => `, ${p}`).join("")}) {\n    return s.${callee.name.text}(${params.join(", ")});\n}` };
    helpers.set(key, helper);
  }
  return helper.name;
}

/**
 * entry: a .ts file. defines: identifier -> JSON-able value, replaced where it is referenced.
 * Returns the bundle's TypeScript text.
 */
export function bundleTypeScript(entry, { tsconfig, defines = {} }) {
  const options = compilerOptions(tsconfig);
  // noUncheckedIndexedAccess: see trustedTypeNode. `tsc --noEmit` checks the code as written.
  const program = ts.createProgram([entry], { ...options, noEmit: true, noUncheckedIndexedAccess: true });
  const checker = program.getTypeChecker();
  const files = moduleOrder(program, entry, options);
  const names = bundleNames(files, checker);
  const targetSymbol = (id) => referencedSymbol(checker, id);
  const constants = constantObjects(files, checker, targetSymbol);
  const constantStatements = new Set([...constants.values()].map((c) => c.statement));
  const live = liveStatements(files, checker, constants);
  // A define replaces a name that is only declared (`declare const X: string`), never one the code binds.
  const defined = (id) => Object.hasOwn(defines, id.text) &&
    (targetSymbol(id)?.declarations ?? []).every((d) => ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Ambient);

  const stringHelpers = new Map(); // "method/argc" -> { name, text }
  const taken = new Set(names.values());

  const transformer = (ctx) => {
    const visit = (node) => {
      if (ts.isCallExpression(node)) {
        const helper = stringMethodHelper(node, checker, stringHelpers, taken);
        if (helper) {
          const v = ts.visitEachChild(node, visit, ctx);
          return f.createCallExpression(f.createIdentifier(helper), undefined, [v.expression.expression, ...v.arguments]);
        }
      }
      if (ts.isShorthandPropertyAssignment(node)) {
        const real = referencedSymbol(checker, node);
        const c = real && constants.get(real);
        if (c && !c.values) return f.createPropertyAssignment(node.name.text, literal(c.value));
        const name = real && names.get(real);
        if (name && name !== node.name.text) return f.createPropertyAssignment(node.name.text, f.createIdentifier(name));
        return node;
      }
      if (ts.isIdentifier(node)) {
        if (defined(node)) {
          const v = defines[node.text];
          return typeof v === "string" ? f.createStringLiteral(v) : num(v);
        }
        const sym = targetSymbol(node);
        const c = sym && constants.get(sym);
        if (c && !c.values && !ts.isTypeQueryNode(node.parent)) return literal(c.value);
        const name = names.get(sym);
        return name && name !== node.text ? f.createIdentifier(name) : node;
      }
      if (ts.isConstructorDeclaration(node) && node.parameters.some((p) => ts.getModifiers(p)?.length)) {
        return ts.visitNode(lowerParameterProperties(node), visit);
      }
      // porffor compiles `new Set<string>()` into a value that throws on first use; type
      // arguments of calls and constructions carry nothing porffor needs, so they go.
      if (ts.isNewExpression(node) && node.typeArguments) {
        const v = ts.visitEachChild(node, visit, ctx);
        return f.updateNewExpression(v, v.expression, undefined, v.arguments);
      }
      if (ts.isCallExpression(node) && node.typeArguments) {
        const v = ts.visitEachChild(node, visit, ctx);
        return f.updateCallExpression(v, v.expression, undefined, v.arguments);
      }
      if (ts.isTypeAssertionExpression(node)) fail(node, "`<T>x` assertions do not parse in porffor; use `x as T`");
      if (ts.isNamespaceImport(node)) fail(node, "namespace imports are not bundled; import names");
      if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
        const c = constants.get(targetSymbol(node.expression));
        if (c?.values) return literal(c.values.get(node.name.text));
      }
      if (ts.isVariableDeclaration(node)) {
        const type = inferredAnnotation(node, checker, targetSymbol);
        if (type) {
          const v = ts.visitEachChild(node, visit, ctx);
          return f.updateVariableDeclaration(v, v.name, v.exclamationToken, type, v.initializer);
        }
      }
      if (ts.isBinaryExpression(node)) return rewriteLess(ts.visitEachChild(node, visit, ctx));
      if (ts.isArrowFunction(node) && isObjectOrArray(node.body)) {
        const v = ts.visitEachChild(node, visit, ctx);
        const body = f.createBlock([f.createReturnStatement(unparen(v.body))], false);
        return f.updateArrowFunction(v, v.modifiers, v.typeParameters, v.parameters, v.type, v.equalsGreaterThanToken, body);
      }
      if (ts.isParenthesizedExpression(node) && isObjectOrArray(node)) return ts.visitNode(unparen(node), visit);
      return ts.visitEachChild(node, visit, ctx);
    };
    return (sf) => {
      const statements = [];
      for (const st of sf.statements) {
        if (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) {
          if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause) &&
              st.exportClause.elements.some((e) => e.propertyName)) fail(st, "`export { a as b }` is not bundled");
          continue;
        }
        if (ts.isExportAssignment(st)) fail(st, "`export =` / `export default` is not bundled");
        if (hasModifier(st, ts.SyntaxKind.DeclareKeyword)) continue;
        if (!live.has(st) && !ts.isInterfaceDeclaration(st) && !ts.isTypeAliasDeclaration(st)) continue;
        if (constantStatements.has(st)) continue;
        let out = ts.visitNode(st, visit);
        if (ts.canHaveModifiers(out) && hasModifier(out, ts.SyntaxKind.ExportKeyword)) {
          const mods = ts.getModifiers(out).filter((m) => m.kind !== ts.SyntaxKind.ExportKeyword);
          out = f.replaceModifiers(out, mods);
        }
        statements.push(out);
      }
      return f.updateSourceFile(sf, statements);
    };
  };

  const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });
  const parts = [];
  for (const sf of files) {
    const result = ts.transform(sf, [transformer]);
    parts.push(`// ${relative(dirname(tsconfig), sf.fileName)}\n${printer.printFile(result.transformed[0])}`);
    result.dispose();
  }
  if (stringHelpers.size > 0) parts.unshift(`// string methods, one dispatch each\n${[...stringHelpers.values()].map((h) => h.text).join("\n")}\n`);
  return parts.join("\n");
}

export { BundleError };
