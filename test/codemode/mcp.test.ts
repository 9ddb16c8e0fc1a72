import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { CodeMode, mcpTools } from "../../src/index.ts";
import { useLoader, useTempDir } from "../helpers.ts";
import { SECRET, startMockApi, tasksSpec, type MockApi } from "./fixtures.ts";

const CLI = fileURLToPath(new URL("../../src/cli/index.ts", import.meta.url));
const dir = useTempDir("mayfly-mcp-");
const specFile = join(dir, "tasks.json");
writeFileSync(specFile, JSON.stringify(tasksSpec));
let api: MockApi;
before(async () => { api = await startMockApi(); });
after(() => api.close());

const cliArgs = (...extra: string[]) => [CLI, "mcp", "--openapi", specFile, "--base-url", api.baseUrl, "--header", `Authorization: ${SECRET}`, "--allow-private", "--cpu-ms", "300", ...extra];

function text(r: Awaited<ReturnType<Client["callTool"]>>): string {
  return (r.content as { type: string; text: string }[]).map((c) => c.text).join("\n");
}

/** What a model would do: list the tools, search, then execute code it wrote from the declarations. */
async function searchThenExecute(client: Client): Promise<void> {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), ["search", "execute"]);
  assert.match(tools[1]!.description!, /declare const tasks: \{/, "a small API's declarations are inline");

  const found = text(await client.callTool({ name: "search", arguments: { query: "list tasks of a project" } }));
  assert.match(found, /^- tasks\.tasksList: List the tasks of a project/);
  assert.match(found, /tasksList\(input: TasksTasksListInput\): Promise<TasksTasksListOutput>;/);

  const run = await client.callTool({ name: "execute", arguments: { code: "```ts\nconst done = await tasks.tasksList({ projectId: \"mayfly\", status: \"done\" });\nconsole.log(done.length);\ndone.map((t: { title: string }) => t.title)\n```" } });
  assert.equal(run.isError, false, text(run));
  const out = JSON.parse(text(run));
  assert.deepEqual(out.result, ["write tests"]);
  assert.deepEqual(out.logs, ["1"]);
  assert.equal(out.metrics.toolCalls, 1);
  assert.equal(api.requests.at(-1)!.authorization, SECRET, "the gateway added the credential");

  const loop = await client.callTool({ name: "execute", arguments: { code: "while (true) {}" } });
  assert.equal(loop.isError, true);
  assert.equal(JSON.parse(text(loop)).error.name, "CpuTimeLimitError");
  // The server keeps serving.
  const after = await client.callTool({ name: "execute", arguments: { code: "return (await tasks.usersGetAuthenticated()).login" } });
  assert.equal(JSON.parse(text(after)).result, "octo");
}

describe("mayfly mcp", () => {
  test("over stdio: an SDK client lists tools, searches, executes; an infinite loop ends in CpuTimeLimitError", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: cliArgs(), stderr: "pipe" });
    const client = new Client({ name: "test", version: "1" });
    await client.connect(transport);
    try {
      await searchThenExecute(client);
    } finally {
      await client.close();
    }
  });

  test("with no tool source: execute is a plain sandboxed code runner, with no network unless --allow-net", async () => {
    const client = new Client({ name: "test", version: "1" });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, "mcp", "--cpu-ms", "300"], stderr: "pipe" }));
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name), ["execute"]);
      assert.match(tools[0]!.description!, /no tools/i);
      assert.match(tools[0]!.description!, /There is no network/);
      const run = await client.callTool({ name: "execute", arguments: { code: "console.log('hi'); const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode('x')); return new Uint8Array(d).length" } });
      assert.equal(run.isError, false, text(run));
      assert.deepEqual(JSON.parse(text(run)).result, 32);
      assert.deepEqual(JSON.parse(text(run)).logs, ["hi"]);
      const net = await client.callTool({ name: "execute", arguments: { code: "return (await fetch('https://example.com/')).status" } });
      assert.equal(net.isError, true, text(net));
      const loop = await client.callTool({ name: "execute", arguments: { code: "for (;;) {}" } });
      assert.equal(JSON.parse(text(loop)).error.name, "CpuTimeLimitError");
      const next = await client.callTool({ name: "execute", arguments: { code: "return 1 + 1" } });
      assert.equal(JSON.parse(text(next)).result, 2, "the server keeps serving after a runaway");
    } finally {
      await client.close();
    }
    const allowed = new Client({ name: "test", version: "1" });
    await allowed.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, "mcp", "--allow-net", "api.example.com"], stderr: "pipe" }));
    try {
      const { tools } = await allowed.listTools();
      assert.match(tools[0]!.description!, /only these hosts.*api\.example\.com/);
    } finally {
      await allowed.close();
    }
  });

  test("over Streamable HTTP with a bearer token, and the per-tool mode", async () => {
    // The credential comes from the environment (${API_SECRET}), not the command line.
    const args = cliArgs("--http", "--port", "0", "--token", "mcp-token-1").map((a) => (a === `Authorization: ${SECRET}` ? "Authorization: ${API_SECRET}" : a));
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, API_SECRET: SECRET } });
    try {
      const url = await listeningUrl(child);
      const client = new Client({ name: "test", version: "1" });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: "Bearer mcp-token-1" } } }));
      await searchThenExecute(client);
      await client.close();
      // Refusals: no token; a Host that is not this server (DNS rebinding); a foreign browser Origin.
      const init = { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: "{}" };
      assert.equal((await fetch(url, init)).status, 401);
      assert.equal(await statusWith(url, { host: "evil.example:80", authorization: "Bearer mcp-token-1" }), 403);
      assert.equal(await statusWith(url, { origin: "http://evil.example", authorization: "Bearer mcp-token-1" }), 403);
    } finally {
      child.kill("SIGTERM");
    }
    const perTool = new Client({ name: "test", version: "1" });
    await perTool.connect(new StdioClientTransport({ command: process.execPath, args: cliArgs("--tools"), stderr: "pipe" }));
    try {
      const { tools } = await perTool.listTools();
      assert.deepEqual(tools.map((t) => t.name), ["tasks_tasksList", "tasks_tasksCreate", "tasks_tasksGet", "tasks_usersGetAuthenticated"]);
      const r = await perTool.callTool({ name: "tasks_tasksGet", arguments: { projectId: "mayfly", taskId: 1 } });
      assert.equal(JSON.parse(text(r)).title, "write tests");
      const bad = await perTool.callTool({ name: "tasks_tasksGet", arguments: { projectId: "mayfly" } });
      assert.equal(bad.isError, true);
      assert.match(text(bad), /^ToolInputError: .*must have required property 'taskId'/);
    } finally {
      await perTool.close();
    }
  });
});

describe("Code Mode: MCP server as a tool source", () => {
  const ctx = useLoader({ executors: 1 });
  test("an MCP server's tools become typed functions the code calls; its errors are catchable", async () => {
    const upstream = new McpServer({ name: "weather", version: "1" });
    upstream.registerTool("get-forecast", {
      description: "Forecast for a city",
      inputSchema: { city: z.string(), days: z.number().int().min(1).max(7) },
      outputSchema: { city: z.string(), highs: z.array(z.number()) },
    }, async ({ city, days }) => {
      if (city === "Atlantis") return { content: [{ type: "text", text: "unknown city" }], isError: true };
      const value = { city, highs: Array.from({ length: days }, (_, i) => 20 + i) };
      return { content: [{ type: "text", text: JSON.stringify(value) }], structuredContent: value };
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await upstream.connect(serverSide);
    const source = await mcpTools({ namespace: "weather", transport: clientSide });
    try {
      const cm = new CodeMode({ loader: ctx.loader, tools: source.tools });
      assert.match(await cm.types(), /getForecast\(input: WeatherGetForecastInput\): Promise<WeatherGetForecastOutput>;/);
      const out = await cm.execute(`
        const f = await weather.getForecast({ city: "Lisbon", days: 3 });
        let err; try { await weather.getForecast({ city: "Atlantis", days: 1 }) } catch (e) { err = e.name + ": " + e.message }
        return { max: Math.max(...f.highs), err }`);
      assert.deepEqual(out.result, { max: 22, err: "ToolCallError: get-forecast failed: unknown city" });
    } finally {
      await source.close();
    }
  });
});

async function listeningUrl(child: ChildProcess): Promise<string> {
  let buf = "";
  for await (const chunk of child.stdout!) {
    buf += chunk;
    const m = /listening on (\S+)/.exec(buf);
    if (m) return m[1]!;
  }
  throw new Error(`the server did not start: ${buf}`);
}

/** A POST with raw headers (Host included, which fetch() will not set). */
function statusWith(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end("{}");
  });
}
