/**
 * OpenAPI 3 operations as tools: `namespace.operationName({ ...parameters, body })`. The host builds
 * each request and sends it through an egress gateway whose rule for the API's origin injects the
 * credentials, so a secret never enters the isolate (nor even the tool's arguments).
 * @apidevtools/json-schema-ref-parser resolves `$ref`s (the maintained resolver), so every schema a
 * tool carries is self-contained for validation, declarations and search.
 */
import { egress, type EgressGateway, type Lookup } from "../../bindings/egress/index.ts";
import { ToolHttpError, ToolSourceError } from "../errors.ts";
import { checkNamespace, toIdentifier, type JsonSchema, type Tool } from "../tool.ts";
import { jsonSchemaValidator } from "../validate.ts";

export interface OpenApiSourceOptions {
  /** The global the operations hang on inside the isolate, e.g. "github". */
  namespace: string;
  /** An OpenAPI 3.x document (parsed JSON). Remote `$ref`s are not followed. */
  spec: Record<string, unknown>;
  /** Where requests go; default: the document's first server URL. */
  baseUrl?: string;
  /** Headers the gateway adds to every request to the API (e.g. authorization); never shown to code. */
  headers?: Record<string, string>;
  /** Let the API's name resolve to a private or loopback address (a local or internal API). */
  allowPrivateAddresses?: boolean;
  /** Name resolution for the gateway (tests, private resolvers). */
  lookup?: Lookup;
  /** A gateway of your own instead (its policy must allow the base URL's origin). */
  gateway?: EgressGateway;
  /** Characters of an operation's description kept in its declaration (default 300). */
  maxDescriptionChars?: number;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"] as const;

interface Parameter { name: string; in: "path" | "query" | "header" | "cookie"; required?: boolean; description?: string; schema?: JsonSchema }
interface Operation {
  operationId?: string; summary?: string; description?: string; tags?: string[]; deprecated?: boolean;
  parameters?: Parameter[]; requestBody?: { required?: boolean; description?: string; content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>;
}

export async function openApiTools(options: OpenApiSourceOptions): Promise<Tool[]> {
  const { namespace } = options;
  checkNamespace(namespace);
  const doc = options.spec as { openapi?: unknown; paths?: Record<string, Record<string, unknown>>; servers?: { url: string }[] };
  if (typeof doc?.openapi !== "string" || !doc.openapi.startsWith("3.") || typeof doc.paths !== "object") {
    throw new ToolSourceError("The document is not OpenAPI 3 (an `openapi: 3.x` field and `paths` are required).");
  }
  const baseUrl = (options.baseUrl ?? doc.servers?.[0]?.url ?? "").replace(/\/+$/, "");
  let origin: string;
  try {
    origin = new URL(baseUrl).origin;
  } catch {
    throw new ToolSourceError(`A base URL is required (the document names no absolute server URL): got "${baseUrl}".`);
  }
  const gateway = options.gateway ?? egress({
    allow: [{ origin, headers: options.headers, allowPrivateAddresses: options.allowPrivateAddresses }],
    lookup: options.lookup,
  });
  let spec: typeof doc;
  try {
    // A copy: dereference() rewrites the document in place. Cycles stay as $refs (see openApiSchema).
    const { dereference } = await import("@apidevtools/json-schema-ref-parser");
    spec = await dereference(structuredClone(doc) as never, { dereference: { circular: "ignore" }, resolve: { external: false } }) as unknown as typeof doc;
  } catch (e) {
    throw new ToolSourceError(`The OpenAPI document's $refs do not resolve: ${(e as Error).message}`);
  }
  const maxDescription = options.maxDescriptionChars ?? 300;
  // One conversion per schema object for the whole document: operations sharing a schema share its
  // converted copy, so declarations name it once.
  const convert = schemaConverter();
  const tools: Tool[] = [];
  const seen = new Set<string>();
  for (const [path, item] of Object.entries(spec.paths!)) {
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op) continue;
      let name = toIdentifier(op.operationId ?? `${method} ${path}`);
      while (seen.has(name)) name += "_";
      seen.add(name);
      const parameters = mergeParameters(item.parameters as Parameter[] | undefined, op.parameters);
      const bodySchema = jsonContent(op.requestBody?.content, convert);
      const inputSchema = operationInput(parameters, bodySchema, op.requestBody, convert);
      const full = `${namespace}.${name}`;
      tools.push({
        namespace,
        name,
        description: describe(op, method, path, maxDescription),
        inputSchema,
        outputSchema: successOutput(op.responses, convert),
        keywords: [...(op.tags ?? []), method.toUpperCase(), path, op.operationId ?? ""],
        validate: jsonSchemaValidator(inputSchema, full),
        invoke: (input) => send(gateway, baseUrl, method, path, parameters, input as Record<string, unknown>),
      });
    }
  }
  return tools;
}

function mergeParameters(pathLevel: Parameter[] = [], opLevel: Parameter[] = []): Parameter[] {
  const byKey = new Map<string, Parameter>();
  for (const p of [...pathLevel, ...opLevel]) if (p.in !== "cookie") byKey.set(`${p.in}:${p.name}`, p);
  return [...byKey.values()];
}

type Convert = (schema: JsonSchema) => JsonSchema;

function jsonContent(content: Record<string, { schema?: JsonSchema }> | undefined, convert: Convert): JsonSchema | undefined {
  if (!content) return undefined;
  const key = Object.keys(content).find((k) => /^application\/(.+\+)?json/.test(k)) ?? Object.keys(content)[0];
  const schema = key ? content[key]?.schema : undefined;
  return schema ? convert(schema) : undefined;
}

function operationInput(parameters: Parameter[], body: JsonSchema | undefined, requestBody: Operation["requestBody"], convert: Convert): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const p of parameters) {
    properties[p.name] = { ...convert(p.schema ?? {}), ...(p.description ? { description: p.description } : {}) };
    if (p.required || p.in === "path") required.push(p.name);
  }
  if (body) {
    properties.body = requestBody?.description ? { ...body, description: requestBody.description } : body;
    if (requestBody?.required) required.push("body");
  }
  return { type: "object", properties, ...(required.length ? { required } : {}), additionalProperties: false };
}

function successOutput(responses: Operation["responses"], convert: Convert): JsonSchema | undefined {
  const code = Object.keys(responses ?? {}).find((c) => /^2\d\d$/.test(c));
  return code ? jsonContent(responses![code]!.content, convert) : undefined;
}

function describe(op: Operation, method: string, path: string, max: number): string {
  const text = [op.summary, op.description && op.description !== op.summary ? op.description : undefined].filter(Boolean).join("\n\n");
  const cut = text.length > max ? `${text.slice(0, max).trimEnd()}…` : text;
  return `${cut}${cut ? "\n" : ""}${method.toUpperCase()} ${path}${op.deprecated ? " (deprecated)" : ""}`;
}

/**
 * OpenAPI 3.0 schemas as JSON Schema: `nullable: true` becomes a "null" type. A cycle the resolver
 * left as a `$ref` becomes `{}` (any value), since the schema must stand alone. Copies, never edits:
 * the same dereferenced object is shared by many operations.
 */
function schemaConverter(): Convert {
  const seen = new Map<object, JsonSchema>();
  return (schema) => openApiSchema(schema, seen);
}

function openApiSchema(schema: JsonSchema, seen: Map<object, JsonSchema>): JsonSchema {
  const done = seen.get(schema);
  if (done) return done;
  if (typeof schema.$ref === "string") return {};
  const out: JsonSchema = {};
  seen.set(schema, out);
  for (const [k, v] of Object.entries(schema)) {
    if (k === "nullable" || k === "example" || k === "examples" || k === "xml" || k === "externalDocs" || k.startsWith("x-")) continue;
    if (Array.isArray(v)) out[k] = v.map((x) => (x && typeof x === "object" && !Array.isArray(x) ? openApiSchema(x as JsonSchema, seen) : x));
    else if (v && typeof v === "object") out[k] = k === "properties" || k === "patternProperties" || k === "$defs" || k === "definitions"
      ? Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([pk, pv]) => [pk, openApiSchema(pv, seen)]))
      : openApiSchema(v as JsonSchema, seen);
    else out[k] = v;
  }
  if (schema.nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  return out;
}

async function send(gateway: EgressGateway, baseUrl: string, method: string, path: string, parameters: Parameter[], input: Record<string, unknown> = {}): Promise<unknown> {
  const url = new URL(baseUrl + path.replace(/\{([^}]+)\}/g, (_, n: string) => encodeURIComponent(String(input[n]))));
  const headers = new Headers({ accept: "application/json" });
  for (const p of parameters) {
    const value = input[p.name];
    if (value === undefined || p.in === "path") continue;
    if (p.in === "query") for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(p.name, typeof v === "object" ? JSON.stringify(v) : String(v));
    else if (p.in === "header") headers.set(p.name, String(value));
  }
  let body: string | undefined;
  if (input.body !== undefined) {
    body = JSON.stringify(input.body);
    headers.set("content-type", "application/json");
  }
  const res = await gateway.fetch(new Request(url, { method: method.toUpperCase(), headers, body }));
  const text = await res.text();
  const value = /json/.test(res.headers.get("content-type") ?? "") && text ? safeJson(text) : text;
  if (!res.ok) throw new ToolHttpError(res.status, `${method.toUpperCase()} ${path} answered ${res.status} ${res.statusText}: ${text.slice(0, 500)}`);
  return value;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
