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
// parser misreads. Anything it cannot translate exactly, and the runtime hazards porffor is known
// to compile wrongly, stop the build with the file and line.
//
// The passes, one file each: constants.mjs (constants and defines inlined), types.mjs (trusted
// annotations), string_methods.mjs (one helper per string method), porffor_syntax.mjs (parser
// defects) and porffor_hazards.mjs (refusals keyed by the ids of toolchain/porffor/defects.ts).
// The source must obey TypeScript's erasableSyntaxOnly (tsconfig.json): no parameter properties,
// enums, namespaces or `<T>x` assertions, which porffor's parser reads wrongly
// (porffor: parser-parameter-property).

import ts from "typescript";
import { dirname, relative } from "node:path";
import { BundleError, f, fail, hasModifier, isPure, num, unwrap } from "./ast.mjs";
import { constantObjects, literal } from "./constants.mjs";
import { refuseRuntimeHazards } from "./porffor_hazards.mjs";
import { isObjectOrArray, rewriteLess, unparen } from "./porffor_syntax.mjs";
import { stringMethodHelper } from "./string_methods.mjs";
import { inferredAnnotation } from "./types.mjs";

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
      const spec = /** @type {ts.StringLiteral | undefined} */ (
        (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier
      );
      if (!spec) continue;
      const resolved = ts.resolveModuleName(spec.text, sf.fileName, options, ts.sys).resolvedModule;
      if (!resolved) fail(st, `cannot resolve "${spec.text}"`);
      if (resolved.isExternalLibraryImport)
        fail(st, `"${spec.text}" is a package: porffor builds bundle project modules only`);
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
  if (
    (ts.isFunctionDeclaration(st) ||
      ts.isClassDeclaration(st) ||
      ts.isInterfaceDeclaration(st) ||
      ts.isTypeAliasDeclaration(st) ||
      ts.isEnumDeclaration(st)) &&
    st.name
  )
    return [st.name];
  return [];
}

/**
 * The declared symbol an identifier, or the value of a `{ a }` shorthand, refers to: through
 * `import { a as b }` and re-exports to the declaration itself.
 */
function referencedSymbol(checker, node) {
  const sym = ts.isShorthandPropertyAssignment(node)
    ? checker.getShorthandAssignmentValueSymbol(node)
    : checker.getSymbolAtLocation(node);
  return sym && sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
}

/** One bundle-wide name per top-level symbol; the first module to declare a name keeps it. */
function bundleNames(files, checker) {
  const names = new Map(); // symbol -> name
  const taken = new Set();
  for (const sf of files) {
    for (const st of sf.statements) {
      if (hasModifier(st, ts.SyntaxKind.DeclareKeyword)) continue;
      if (hasModifier(st, ts.SyntaxKind.DefaultKeyword))
        fail(st, "default exports are not bundled; use a named export");
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

/** Initializers that may be dropped with their variable when nothing uses it. */
function isPureInit(e) {
  if (!e) return true;
  e = unwrap(e);
  if (ts.isArrowFunction(e) || ts.isFunctionExpression(e) || ts.isClassExpression(e)) return true;
  if (ts.isObjectLiteralExpression(e)) {
    return e.properties.every(
      (p) =>
        (ts.isPropertyAssignment(p) && !ts.isComputedPropertyName(p.name) && isPureInit(p.initializer)) ||
        ts.isShorthandPropertyAssignment(p) ||
        ts.isMethodDeclaration(p),
    );
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
      if (ts.isImportDeclaration(st) || ts.isExportDeclaration(st) || hasModifier(st, ts.SyntaxKind.DeclareKeyword))
        continue;
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
    if (!live.has(st)) {
      live.add(st);
      queue.push(st);
    }
  };
  for (const st of all) {
    const declaration =
      ts.isFunctionDeclaration(st) ||
      ts.isClassDeclaration(st) ||
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

/**
 * entry: a .ts file. defines: identifier -> JSON-able value, replaced where it is referenced.
 * allowHazards: compile the runtime hazards porffor_hazards.mjs refuses (only the probes of
 * porffor's defects do). Returns the bundle's TypeScript text.
 */
export function bundleTypeScript(entry, { tsconfig, defines = {}, allowHazards = false }) {
  const options = compilerOptions(tsconfig);
  // noUncheckedIndexedAccess: see trustedTypeNode. `tsc --noEmit` checks the code as written.
  const program = ts.createProgram([entry], { ...options, noEmit: true, noUncheckedIndexedAccess: true });
  const checker = program.getTypeChecker();
  const files = moduleOrder(program, entry, options);
  if (!allowHazards) for (const sf of files) refuseRuntimeHazards(sf, checker);
  const names = bundleNames(files, checker);
  const targetSymbol = (id) => referencedSymbol(checker, id);
  const constants = constantObjects(files, checker, targetSymbol);
  const constantStatements = new Set([...constants.values()].map((c) => c.statement));
  const live = liveStatements(files, checker, constants);
  // A define replaces a name that is only declared (`declare const X: string`), never one the code binds.
  const defined = (id) =>
    Object.prototype.hasOwnProperty.call(defines, id.text) &&
    (targetSymbol(id)?.declarations ?? []).every((d) => ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Ambient);

  const stringHelpers = new Map(); // "method/argc" -> { name, text }
  const taken = new Set(names.values());

  const transformer = (ctx) => {
    const visit = (node) => {
      if (ts.isCallExpression(node)) {
        const helper = stringMethodHelper(node, checker, stringHelpers, taken);
        if (helper) {
          const v = ts.visitEachChild(node, visit, ctx);
          const callee = /** @type {ts.PropertyAccessExpression} */ (v.expression);
          return f.createCallExpression(f.createIdentifier(helper), undefined, [callee.expression, ...v.arguments]);
        }
      }
      if (ts.isShorthandPropertyAssignment(node)) {
        const real = referencedSymbol(checker, node);
        const c = real && constants.get(real);
        if (c && !c.values) return f.createPropertyAssignment(node.name.text, literal(c.value));
        const name = real && names.get(real);
        if (name && name !== node.name.text)
          return f.createPropertyAssignment(node.name.text, f.createIdentifier(name));
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
      // porffor compiles `new Set<string>()` into a value that throws on first use; type
      // arguments of calls and constructions carry nothing porffor needs, so they go
      // (porffor: parser-type-arguments).
      if (ts.isNewExpression(node) && node.typeArguments) {
        const v = ts.visitEachChild(node, visit, ctx);
        return f.updateNewExpression(v, v.expression, undefined, v.arguments);
      }
      if (ts.isCallExpression(node) && node.typeArguments) {
        const v = ts.visitEachChild(node, visit, ctx);
        return f.updateCallExpression(v, v.expression, undefined, v.arguments);
      }
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
        return f.updateArrowFunction(
          v,
          v.modifiers,
          v.typeParameters,
          v.parameters,
          v.type,
          v.equalsGreaterThanToken,
          body,
        );
      }
      if (ts.isParenthesizedExpression(node) && isObjectOrArray(node)) return ts.visitNode(unparen(node), visit);
      return ts.visitEachChild(node, visit, ctx);
    };
    return (sf) => {
      /** @type {ts.Statement[]} */
      const statements = [];
      for (const st of sf.statements) {
        if (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) {
          if (
            ts.isExportDeclaration(st) &&
            !st.moduleSpecifier &&
            st.exportClause &&
            ts.isNamedExports(st.exportClause) &&
            st.exportClause.elements.some((e) => e.propertyName)
          )
            fail(st, "`export { a as b }` is not bundled");
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
        statements.push(/** @type {ts.Statement} */ (out));
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
  if (stringHelpers.size > 0)
    parts.unshift(
      `// string methods, one dispatch each\n${[...stringHelpers.values()].map((h) => h.text).join("\n")}\n`,
    );
  return parts.join("\n");
}

export { BundleError };
