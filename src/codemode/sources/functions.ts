/**
 * Host functions as tools: each with a zod schema or a JSON Schema for its input (and optionally
 * its output). zod schemas validate with zod itself (its messages are the clearest) and become
 * JSON Schema through zod's own `z.toJSONSchema` for the declarations.
 */
import { z } from "zod";
import { ToolInputError, ToolSourceError } from "../errors.ts";
import { checkNamespace, isIdentifier, type JsonSchema, type Tool } from "../tool.ts";
import { jsonSchemaValidator } from "../validate.ts";

export interface FunctionToolDefinition {
  description?: string;
  /** A zod schema or a JSON Schema object describing the one argument. */
  inputSchema: z.ZodType | JsonSchema;
  outputSchema?: z.ZodType | JsonSchema;
  execute(input: any): unknown;
  /** Each call waits for a person's approval (durable Code Mode; see Tool.requiresApproval). */
  requiresApproval?: boolean;
}

/** `functionTools("db", { query: { description, inputSchema, execute } })` → tools called as `db.query({...})`. */
export function functionTools(namespace: string, definitions: Record<string, FunctionToolDefinition>): Tool[] {
  checkNamespace(namespace);
  return Object.entries(definitions).map(([name, def]) => {
    if (!isIdentifier(name)) throw new ToolSourceError(`Tool name "${name}" is not a JavaScript identifier.`);
    if (typeof def?.execute !== "function") throw new ToolSourceError(`Tool ${namespace}.${name} has no execute function.`);
    if (def.inputSchema === null || typeof def.inputSchema !== "object") throw new ToolSourceError(`Tool ${namespace}.${name} needs an inputSchema (zod or JSON Schema).`);
    const full = `${namespace}.${name}`;
    return {
      namespace,
      name,
      description: def.description,
      inputSchema: toJsonSchema(def.inputSchema),
      outputSchema: def.outputSchema ? toJsonSchema(def.outputSchema) : undefined,
      validate: isZod(def.inputSchema) ? zodValidator(def.inputSchema, full) : jsonSchemaValidator(def.inputSchema, full),
      invoke: async (input) => def.execute(input),
      ...(def.requiresApproval ? { requiresApproval: true } : {}),
    };
  });
}

function isZod(schema: unknown): schema is z.ZodType {
  return schema instanceof z.ZodType;
}

function toJsonSchema(schema: z.ZodType | JsonSchema): JsonSchema {
  if (!isZod(schema)) return schema;
  // "input": a schema with defaults describes what the caller may omit.
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  return json;
}

function zodValidator(schema: z.ZodType, toolName: string): (input: unknown) => unknown {
  return (input) => {
    const r = schema.safeParse(input);
    if (r.success) return r.data;
    throw new ToolInputError(`Invalid input for ${toolName}: ${r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "input"}: ${i.message}`).join("; ")}`);
  };
}
