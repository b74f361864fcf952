// String method calls through one helper per method and argument count (a code-size hint).
import ts from "typescript";

/**
 * porffor compiles a method call on a string into a dispatch over every string representation and
 * every other type that has a method of that name, at each call site. A call on a receiver the checker types as a string becomes a
 * call of one small function per method and argument count, which holds that dispatch once:
 * `s.slice(a, b)` -> `string_slice_2(s, a, b)`. The receiver is evaluated before the arguments
 * either way. Returns the helper's name, or undefined to leave the call as written.
 */
export function stringMethodHelper(call, checker, helpers, taken) {
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
    helper = {
      name,
      text: `function ${name}(s: string${params.map((p) => `, ${p}`).join("")}) {\n    return s.${callee.name.text}(${params.join(", ")});\n}`,
    };
    helpers.set(key, helper);
  }
  return helper.name;
}
