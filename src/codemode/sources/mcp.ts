/**
 * An MCP server's tools as Code Mode tools: connected as a client with the official SDK (stdio or
 * Streamable HTTP). Tool names become identifiers (`get-issue` → `getIssue`); calls go to the server
 * by the original name. A result's structured content is returned when the server gives one, else
 * its text (parsed when it is JSON). The SDK is loaded on first use.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { Tool as McpTool } from "@modelcontextprotocol/sdk/types.js";
import { ToolCallError, ToolSourceError } from "../errors.ts";
import { checkNamespace, toIdentifier, type JsonSchema, type Tool } from "../tool.ts";
import { jsonSchemaValidator } from "../validate.ts";

export interface McpSourceOptions {
  namespace: string;
  /** A local server to start, spoken to over its stdin/stdout. */
  command?: string;
  args?: string[];
  /** Its environment (default: the SDK's safe subset of this process's). */
  env?: Record<string, string>;
  /** A remote server's Streamable HTTP endpoint. */
  url?: string;
  /** Headers for every HTTP request to it (credentials stay on the host). */
  headers?: Record<string, string>;
  /** Any other transport (e.g. in-memory for tests). */
  transport?: Transport;
}

export interface McpToolSource {
  tools: Tool[];
  /** Disconnects (and stops a stdio server). */
  close(): Promise<void>;
}

export async function mcpTools(options: McpSourceOptions): Promise<McpToolSource> {
  const { namespace } = options;
  checkNamespace(namespace);
  const [{ Client }, { StdioClientTransport }, { StreamableHTTPClientTransport }] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/stdio.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
  ]);
  const transport = options.transport
    ?? (options.command ? new StdioClientTransport({ command: options.command, args: options.args, env: options.env, stderr: "inherit" })
      : options.url ? new StreamableHTTPClientTransport(new URL(options.url), { requestInit: { headers: options.headers } })
        : undefined);
  if (!transport) throw new ToolSourceError("An MCP source needs a command, a url or a transport.");
  const client = new Client({ name: "mayfly-codemode", version: "0.1.0" });
  try {
    await client.connect(transport);
  } catch (e) {
    throw new ToolSourceError(`Could not connect to the MCP server for ${namespace}: ${(e as Error).message}`);
  }
  const listed: McpTool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    listed.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  const names = new Set<string>();
  const tools = listed.map((t): Tool => {
    let name = toIdentifier(t.name);
    while (names.has(name)) name += "_";
    names.add(name);
    const inputSchema = t.inputSchema as JsonSchema;
    return {
      namespace,
      name,
      description: [t.title, t.description].filter(Boolean).join("\n") || undefined,
      inputSchema,
      outputSchema: t.outputSchema as JsonSchema | undefined,
      keywords: [t.name],
      validate: jsonSchemaValidator(inputSchema, `${namespace}.${name}`),
      invoke: async (input) => toolResult(t.name, await client.callTool({ name: t.name, arguments: input as Record<string, unknown> })),
    };
  });
  return { tools, close: () => client.close() };
}

function toolResult(name: string, r: Awaited<ReturnType<Client["callTool"]>>): unknown {
  const content = (r.content ?? []) as { type: string; text?: string }[];
  const text = content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
  if (r.isError) throw new ToolCallError(`${name} failed: ${text || "the server gave no reason"}`);
  if (r.structuredContent !== undefined) return r.structuredContent;
  if (content.some((c) => c.type !== "text")) return content;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
