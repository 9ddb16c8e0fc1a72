/**
 * Code Mode over MCP, with the official SDK: the tools `search` and `execute` (or, as an option,
 * one MCP tool per operation), served over stdio or Streamable HTTP. The low-level SDK Server is
 * used because tool input schemas here are JSON Schema, not zod. The SDK is loaded on first use:
 * importing mayfly should not pay for it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { CallToolResult, Tool as McpTool } from "@modelcontextprotocol/sdk/types.js";
import type { CodeMode } from "./codemode.ts";
import { ToolRejectedError } from "./errors.ts";
import type { ExecuteResult } from "./execute.ts";

export interface McpServerOptions {
  /** "codemode" (default): search + execute. "tools": one MCP tool per operation, called directly. */
  mode?: "codemode" | "tools";
  name?: string;
  version?: string;
  /**
   * With no tools, `execute` is a plain sandboxed code runner; this says what network it has
   * (the hosts its egress gateway allows, or none), so the model knows before it tries.
   */
  network?: string[];
  /**
   * Durable Code Mode: how long to wait for the person at the client to answer an approval request
   * (MCP elicitation) before leaving the run paused (default 10 minutes).
   */
  approvalTimeoutMs?: number;
}

/** An MCP server (not yet connected) exposing `codeMode`. One per connection or stateless request. */
export async function createMcpServer(codeMode: CodeMode, options: McpServerOptions = {}): Promise<Server> {
  const [{ Server }, { CallToolRequestSchema, ListToolsRequestSchema }] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/index.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  const server = new Server({ name: options.name ?? "mayfly-codemode", version: options.version ?? "0.1.0" }, { capabilities: { tools: {} } });
  const mode = options.mode ?? "codemode";
  const tools = mode === "tools" ? perOperationDefinitions(codeMode)
    : codeMode.tools.length ? await codeModeDefinitions(codeMode) : [codeRunnerDefinition(options.network ?? [])];
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));
  server.setRequestHandler(CallToolRequestSchema, (req) =>
    mode === "tools" ? callOperation(codeMode, req.params.name, req.params.arguments, (tool, input) => askBeforeCall(server, tool, input, options.approvalTimeoutMs ?? 600_000)) : callCodeMode(codeMode, req.params.name, req.params.arguments ?? {}, (out) => askForApproval(server, codeMode, out, options.approvalTimeoutMs ?? 600_000)));
  return server;
}

/** The two tools' definitions: what a model sees (and what the token benchmark counts). */
export async function codeModeDefinitions(codeMode: CodeMode): Promise<McpTool[]> {
  const d = await codeMode.describe();
  return [
    {
      name: "search",
      description: d.search,
      inputSchema: {
        type: "object",
        properties: {
          query: { type: "string", description: "Keywords" },
          code: { type: "string", description: "async () => ... over spec.operations" },
          limit: { type: "integer", minimum: 1, maximum: 50 },
        },
      },
    },
    {
      name: "execute",
      description: d.execute,
      inputSchema: EXECUTE_INPUT,
    },
  ];
}

const EXECUTE_INPUT: McpTool["inputSchema"] = { type: "object", properties: { code: { type: "string", description: "JavaScript or TypeScript" } }, required: ["code"] };

/** `execute` with no tools behind it: code runs in a fresh isolate with the Web APIs and nothing else. */
export function codeRunnerDefinition(network: string[]): McpTool {
  const net = network.length
    ? `fetch() reaches only these hosts, through an egress gateway: ${network.join(", ")}.`
    : "There is no network: fetch() fails.";
  return {
    name: "execute",
    description: [
      "Runs JavaScript or TypeScript in a fresh, sandboxed V8 isolate and returns { result, logs, error, metrics }.",
      "The code is an async function body: `return` a value (JSON-serialisable) and use console.log for logs.",
      "There are no tools; the globals are the Web APIs (fetch, URL, TextEncoder, crypto, streams, timers...).",
      `No filesystem, no processes. ${net} CPU, memory and wall time are limited; a run past a limit ends with a typed error.`,
    ].join(" "),
    inputSchema: EXECUTE_INPUT,
  };
}

/** One MCP tool per operation (`--tools`): the baseline Code Mode is measured against. */
export function perOperationDefinitions(codeMode: CodeMode): McpTool[] {
  return codeMode.tools.map((t) => ({
    name: `${t.namespace}_${t.name}`,
    description: t.description,
    inputSchema: t.inputSchema as McpTool["inputSchema"],
    ...(t.outputSchema?.type === "object" ? { outputSchema: t.outputSchema as McpTool["outputSchema"] } : {}),
  }));
}

async function callCodeMode(codeMode: CodeMode, name: string, args: Record<string, unknown>, approvals: (out: ExecuteResult) => Promise<ExecuteResult>): Promise<CallToolResult> {
  if (name === "execute") {
    if (typeof args.code !== "string") return failure("execute needs `code` (a string).");
    const out = await approvals(await codeMode.execute(args.code));
    return { content: [{ type: "text", text: JSON.stringify(out) }], isError: !!out.error };
  }
  if (name === "search") {
    if (typeof args.code === "string") {
      const out = await codeMode.searchWithCode(args.code);
      const summary = JSON.stringify({ result: out.result, logs: out.logs, error: out.error });
      return { content: [{ type: "text", text: out.types ? `${summary}\n\n${out.types}` : summary }], isError: !!out.error };
    }
    if (typeof args.query !== "string") return failure("search needs `query` (keywords) or `code`.");
    const out = await codeMode.search(args.query, typeof args.limit === "number" ? args.limit : undefined);
    const list = out.matches.map((m) => `- ${m.tool}: ${m.description ?? ""}`).join("\n");
    return { content: [{ type: "text", text: out.matches.length ? `${list}\n\n${out.types}` : "No operation matches; try other words or search with code." }] };
  }
  return failure(`Unknown tool ${name}: this server has search and execute.`);
}

async function callOperation(codeMode: CodeMode, name: string, args: unknown, approve: (tool: string, input: unknown) => Promise<string | undefined>): Promise<CallToolResult> {
  const tool = codeMode.tools.find((t) => `${t.namespace}_${t.name}` === name);
  if (!tool) return failure(`Unknown tool ${name}.`);
  try {
    const input = tool.validate(args ?? {});
    // Called directly there is no run to pause: the person is asked now, or the call is refused.
    const refusal = tool.requiresApproval ? await approve(`${tool.namespace}.${tool.name}`, input) : undefined;
    if (refusal !== undefined) throw new ToolRejectedError(`${tool.namespace}.${tool.name} was rejected: ${refusal}`, refusal);
    const value = await tool.invoke(input);
    const result: CallToolResult = { content: [{ type: "text", text: typeof value === "string" ? value : JSON.stringify(value) }] };
    // A tool that declares an output schema must answer with structured content (MCP spec).
    if (tool.outputSchema?.type === "object") result.structuredContent = value as Record<string, unknown>;
    return result;
  } catch (e) {
    return failure(`${(e as Error).name}: ${(e as Error).message}`);
  }
}

/**
 * A durable run paused for approval: the person at the client is asked (MCP elicitation, a form with
 * approve and reason), and the run resumes with the answer, as often as it pauses. The model is never
 * offered a way to approve: with a client that cannot ask its user (or a stateless HTTP request), or
 * when the person cancels or does not answer in time, the paused status goes back to the model and the
 * host approves or rejects the run itself (codeMode.approve/reject, e.g. from another process over the
 * same journal).
 */
async function askForApproval(server: Server, codeMode: CodeMode, out: ExecuteResult, timeoutMs: number): Promise<ExecuteResult> {
  while (out.status === "paused" && out.runId && out.pending && canAskUser(server)) {
    const answer = await ask(server, `Code run ${out.runId} wants to call ${out.pending.tool} with ${JSON.stringify(out.pending.input)}. Approve this call?`, out.pending.tool, timeoutMs);
    if (answer === undefined) return out;
    out = answer.approved ? await codeMode.approve(out.runId) : await codeMode.reject(out.runId, answer.reason);
  }
  return out;
}

/** One operation called directly (per-operation mode): undefined when the person approves, else why not. */
async function askBeforeCall(server: Server, tool: string, input: unknown, timeoutMs: number): Promise<string | undefined> {
  if (!canAskUser(server)) return "it requires a person's approval, and this client cannot ask its user";
  const answer = await ask(server, `A client wants to call ${tool} with ${JSON.stringify(input)}. Approve this call?`, tool, timeoutMs);
  if (answer === undefined) return "no answer from the user";
  return answer.approved ? undefined : answer.reason;
}

/** The approval form; undefined when the person cancelled or did not answer in time. */
async function ask(server: Server, message: string, tool: string, timeoutMs: number): Promise<{ approved: true } | { approved: false; reason: string } | undefined> {
  let answer: Awaited<ReturnType<Server["elicitInput"]>>;
  try {
    answer = await server.elicitInput({
      message,
      requestedSchema: {
        type: "object",
        properties: {
          approve: { type: "boolean", title: "Approve", description: `Let ${tool} run with this input` },
          reason: { type: "string", title: "Reason", description: "Why not (shown to the code when rejected)" },
        },
        required: ["approve"],
      },
    }, { timeout: timeoutMs });
  } catch {
    return undefined;
  }
  if (answer.action === "cancel") return undefined;
  if (answer.action === "accept" && answer.content?.approve === true) return { approved: true };
  return { approved: false, reason: typeof answer.content?.reason === "string" && answer.content.reason ? answer.content.reason : "declined by the user" };
}

/** Form elicitation: an `elicitation` capability that is not URL-only (an empty one means form, for older clients). */
function canAskUser(server: Server): boolean {
  const e = server.getClientCapabilities()?.elicitation as { form?: unknown; url?: unknown } | undefined;
  return !!e && (e.form !== undefined || e.url === undefined);
}

function failure(text: string): CallToolResult {
  return { content: [{ type: "text", text }], isError: true };
}

/** Serves over this process's stdin/stdout; stdout then carries only protocol messages. */
export async function serveMcpStdio(codeMode: CodeMode, options: McpServerOptions = {}): Promise<{ close(): Promise<void> }> {
  const server = await createMcpServer(codeMode, options);
  const { StdioServerTransport } = await import("@modelcontextprotocol/sdk/server/stdio.js");
  await server.connect(new StdioServerTransport());
  return { close: () => server.close() };
}

export interface McpHttpOptions extends McpServerOptions {
  port?: number;
  /** Default 127.0.0.1: an MCP endpoint runs code with the host's credentials, keep it local. */
  host?: string;
  /** Bearer tokens a client must present. Required when listening beyond loopback. */
  tokens?: string[];
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * Who may talk to the endpoint. A page in a browser can reach a loopback server through a rebound DNS
 * name, so the Host must name this server (by an address it listens on, or localhost) and a browser's
 * Origin must be one of those too; then the bearer token, when there are tokens.
 */
function refusal(req: IncomingMessage, allowedHosts: Set<string>, tokens: string[] | undefined): { status: number; message: string } | undefined {
  if (!allowedHosts.has((req.headers.host ?? "").toLowerCase())) return { status: 403, message: `Host ${req.headers.host ?? "(none)"} is not this server.` };
  const origin = req.headers.origin;
  if (origin && !allowedHosts.has(new URL(origin).host.toLowerCase())) return { status: 403, message: `Origin ${origin} may not use this server.` };
  if (!tokens?.length) return undefined;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
  if (!m || !tokens.includes(m[1]!)) return { status: 401, message: "A valid bearer token is required." };
  return undefined;
}

/** Streamable HTTP at `/mcp`, stateless: each POST gets a fresh server and transport. */
export async function serveMcpHttp(codeMode: CodeMode, options: McpHttpOptions = {}): Promise<{ url: string; close(): Promise<void> }> {
  const { StreamableHTTPServerTransport } = await import("@modelcontextprotocol/sdk/server/streamableHttp.js");
  const host = options.host ?? "127.0.0.1";
  if (!LOOPBACK.test(host) && !options.tokens?.length) throw new TypeError(`Listening on ${host} needs tokens: an MCP endpoint runs code with the host's credentials.`);
  const allowedHosts = new Set<string>();
  const http = createServer((req, res) => void handle(req, res).catch((e: Error) => {
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32603, message: e.message }, id: null }));
  }));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refused = refusal(req, allowedHosts, options.tokens);
    if (refused) {
      res.writeHead(refused.status, { "content-type": "application/json", ...(refused.status === 401 ? { "www-authenticate": "Bearer" } : {}) })
        .end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: refused.message }, id: null }));
      return;
    }
    if (new URL(req.url ?? "/", "http://x").pathname !== "/mcp") {
      res.writeHead(404, { "content-type": "text/plain" }).end("MCP is served at /mcp\n");
      return;
    }
    const server = await createMcpServer(codeMode, options);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on("close", () => void transport.close().then(() => server.close()));
    await server.connect(transport);
    await transport.handleRequest(req, res);
  }
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 0, host, () => resolve());
  });
  const { address, port } = http.address() as AddressInfo;
  for (const name of [host, address.includes(":") ? `[${address}]` : address, "localhost", "127.0.0.1", "[::1]"]) allowedHosts.add(`${name}:${port}`.toLowerCase());
  return {
    url: `http://${address.includes(":") ? `[${address}]` : address}:${port}/mcp`,
    close: () => new Promise<void>((r) => { http.closeAllConnections(); http.close(() => r()); }),
  };
}
