/**
 * TypeScript declarations for tools, grouped by namespace, as a model reads them: one
 * `declare const <namespace>: { ... }` per namespace with a JSDoc per tool, plus the input and
 * output types. json-schema-to-typescript (the maintained JSON Schema → TS compiler) writes the
 * types; one compile per namespace so a schema shared by several operations (dereferenced to the
 * same object) is declared once, under its `title`.
 */
// Loaded on first use (as are the MCP SDK and `ai`): importing mayfly should not pay for Code Mode.
import type { JsonSchema, Tool } from "./tool.ts";

const CALL_CONVENTION = "Call as `await <namespace>.<tool>(input)`. A failed call throws an Error whose `name` says why (ToolInputError, ToolHttpError, ToolCallError, ...); catch it to recover.";

/** Declarations for `tools` (any mix of namespaces), in a stable order. */
export async function generateTypes(tools: readonly Tool[]): Promise<string> {
  const byNamespace = groupByNamespace(tools);
  const blocks = await Promise.all([...byNamespace].map(([ns, list]) => namespaceTypes(ns, list)));
  return [`// ${CALL_CONVENTION}`, ...blocks].join("\n\n");
}

export function groupByNamespace(tools: readonly Tool[]): Map<string, Tool[]> {
  const m = new Map<string, Tool[]>();
  for (const t of tools) {
    const list = m.get(t.namespace) ?? [];
    list.push(t);
    m.set(t.namespace, list);
  }
  return m;
}

async function namespaceTypes(namespace: string, tools: Tool[]): Promise<string> {
  const definitions: Record<string, JsonSchema> = {};
  const signatures: string[] = [];
  for (const t of tools) {
    const base = pascal(namespace) + pascal(t.name);
    definitions[`${base}Input`] = withTitle(t.inputSchema, `${base}Input`);
    if (t.outputSchema) definitions[`${base}Output`] = withTitle(t.outputSchema, `${base}Output`);
    const optional = t.inputSchema.type === "object" && !hasRequired(t.inputSchema);
    // Said where the model reads the operation (search results too), not only in execute's description.
    const description = t.requiresApproval ? [t.description, "Requires a person's approval: the run pauses at this call until approved or rejected."].filter(Boolean).join("\n") : t.description;
    signatures.push(`${jsdoc(description, "  ")}  ${t.name}(input${optional ? "?" : ""}: ${base}Input): Promise<${t.outputSchema ? `${base}Output` : "unknown"}>;`);
  }
  const { compile } = await import("json-schema-to-typescript");
  const types = await compile({ definitions, additionalProperties: false } as never, `${pascal(namespace)}Types`, {
    bannerComment: "",
    format: false,
    additionalProperties: false,
    unreachableDefinitions: true,
    declareExternallyReferenced: true,
    strictIndexSignatures: false,
    // Schemas arrive dereferenced; nothing is read from disk or the network.
    $refOptions: { resolve: { file: false, http: false } } as never,
  });
  return [
    `declare const ${namespace}: {\n${signatures.join("\n")}\n};`,
    types
      .replace(/^export interface \w+Types \{\s*\}\n?/m, "")
      // json-schema-to-typescript's note on where each definition came from: noise to a model.
      .replace(/\/\*\*\n \* This interface was referenced by [^\n]*\n \* via the [^\n]*\n \*\/\n/g, "")
      .replace(/^export /gm, "")
      .trim(),
  ].join("\n");
}

function withTitle(schema: JsonSchema, title: string): JsonSchema {
  // A copy: the name belongs to this tool's position, the shared schema keeps its own title.
  return { ...schema, title };
}

function hasRequired(schema: JsonSchema): boolean {
  return Array.isArray(schema.required) && schema.required.length > 0;
}

function jsdoc(text: string | undefined, indent: string): string {
  if (!text?.trim()) return "";
  const lines = text.trim().replace(/\*\//g, "*\\/").split("\n");
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

function pascal(id: string): string {
  return id.replace(/^[_$]+/, "").replace(/^./, (c) => c.toUpperCase());
}
