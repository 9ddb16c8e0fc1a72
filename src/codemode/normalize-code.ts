/**
 * Turns code as a model writes it into one async arrow function. Accepted: a markdown fence around
 * it, TypeScript, an async arrow function (or `export default` of one), a function declaration, a
 * body with `return`, or statements ending in an expression (whose value is the result).
 * esbuild strips the types (it is already mayfly's TypeScript compiler); acorn, the maintained JS
 * parser, finds the shape of what is left, so nothing is guessed with regular expressions.
 */
import { transformSync } from "esbuild";
import { parse, type ExpressionStatement, type Node, type Statement } from "acorn";
import { CodeSyntaxError } from "./errors.ts";

const FENCE = /```[\w-]*[^\S\n]*\n([\s\S]*?)```/;

/** The code as `async () => { ... }`, JavaScript only. Throws CodeSyntaxError. */
export function normalizeCode(code: string): string {
  const source = exportDefault(stripFence(code).trim());
  if (!source) return "async () => {}";
  // Wrapped first, so `return` and `await` at top level are legal and types are stripped in place.
  let js: string;
  try {
    js = transformSync(`(async () => {\n${source}\n})`, { loader: "ts", format: "esm", target: "es2022" }).code;
  } catch (e) {
    throw new CodeSyntaxError(syntaxMessage(e));
  }
  const program = parse(js, { ecmaVersion: "latest", sourceType: "module" });
  const wrapper = (program.body[0] as ExpressionStatement).expression;
  if (program.body.length !== 1 || wrapper.type !== "ArrowFunctionExpression" || wrapper.body.type !== "BlockStatement") {
    // The code closed the wrapper itself (e.g. "}) + (") — refuse rather than run something else.
    throw new CodeSyntaxError("The code is not a function body.");
  }
  const body = wrapper.body.body;
  const text = (n: Node) => js.slice(n.start, n.end);
  const only = body.length === 1 ? body[0]! : undefined;
  if (only?.type === "ExpressionStatement" && isFunction(only.expression)) {
    return `async () => {\nreturn await (${text(only.expression)})();\n}`;
  }
  if (only?.type === "FunctionDeclaration" && only.id) {
    return `async () => {\n${text(only)}\nreturn await ${only.id.name}();\n}`;
  }
  const last = body.at(-1);
  if (last?.type === "ExpressionStatement") {
    return `async () => {\n${js.slice(wrapper.body.start + 1, last.start)}return (${text(last.expression)});\n}`;
  }
  return `async () => {\n${body.map((s: Statement) => text(s)).join("\n")}\n}`;
}

function stripFence(code: string): string {
  const m = FENCE.exec(code);
  return m ? m[1]! : code;
}

/** `export default <function or value>` → the value, called if it is a function. */
function exportDefault(source: string): string {
  const m = /^export\s+default\s+([\s\S]*?);?\s*$/.exec(source);
  if (!m) return source;
  return `const __default = (${m[1]}\n);\nreturn typeof __default === "function" ? await __default() : await __default;`;
}

function isFunction(n: Node): boolean {
  return n.type === "ArrowFunctionExpression" || n.type === "FunctionExpression";
}

function syntaxMessage(e: unknown): string {
  const errors = (e as { errors?: { text: string; location?: { line: number; column: number } | null }[] }).errors;
  if (!errors?.length) return String((e as Error).message ?? e);
  // Line numbers as the model wrote them: the wrapper added one line above.
  return errors.map((x) => (x.location ? `line ${x.location.line - 1}:${x.location.column + 1}: ${x.text}` : x.text)).join("; ");
}
