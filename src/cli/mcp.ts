/**
 * `mayfly mcp`: Code Mode as an MCP server. Tool sources come from flags: an OpenAPI document
 * (requests through an egress gateway that adds --header to the API's origin) and MCP servers
 * started as child processes. Over stdio, stdout carries only the protocol: messages go to stderr.
 */
import { readFile } from "node:fs/promises";
import { InvalidArgumentError } from "commander";
import { allowNetRules, egress } from "../bindings/egress/index.ts";
import { WorkerLoader } from "../loader/worker-loader.ts";
import { CodeMode } from "../codemode/codemode.ts";
import { serveMcpHttp, serveMcpStdio } from "../codemode/mcp-server.ts";
import { mcpTools } from "../codemode/sources/mcp.ts";
import { openApiTools } from "../codemode/sources/openapi.ts";
import { toIdentifier, type Tool } from "../codemode/tool.ts";

export interface McpCommandOptions {
  openapi?: string;
  namespace?: string;
  baseUrl?: string;
  header: string[];
  allowPrivate?: boolean;
  allowNet?: string[];
  mcpServer: string[];
  tools?: boolean;
  http?: boolean;
  port: number;
  host: string;
  cpuMs?: number;
  memoryMb?: number;
  wallMs?: number;
  token: string[];
}

/** `env` supplies `${NAME}` in --header values, so a secret need not appear on the command line. */
export async function startMcp(opts: McpCommandOptions, env: Record<string, string | undefined> = {}): Promise<{ close(): Promise<void> }> {
  const tools: Tool[] = [];
  const closers: (() => Promise<void>)[] = [];
  if (opts.openapi) {
    const spec = JSON.parse(await readFile(opts.openapi, "utf8")) as Record<string, unknown>;
    const title = (spec.info as { title?: string } | undefined)?.title;
    tools.push(...await openApiTools({
      namespace: opts.namespace ?? toIdentifier(title ?? "api"),
      spec,
      baseUrl: opts.baseUrl,
      headers: Object.fromEntries(opts.header.map((h) => parseHeader(h, env))),
      allowPrivateAddresses: opts.allowPrivate,
    }));
  }
  for (const spec of opts.mcpServer) {
    const { namespace, command, args } = parseMcpServer(spec);
    const source = await mcpTools({ namespace, command, args });
    tools.push(...source.tools);
    closers.push(source.close);
  }
  // No tool source: `execute` is a plain sandboxed code runner (network only with --allow-net).
  if (!tools.length && opts.tools) throw new InvalidArgumentError("--tools needs tools: give --openapi <file> and/or --mcp-server <name=command>.");
  const loader = new WorkerLoader();
  await loader.ready();
  const codeMode = new CodeMode({
    loader,
    tools,
    limits: { cpuMs: opts.cpuMs, memoryMb: opts.memoryMb, wallMs: opts.wallMs },
    globalOutbound: opts.allowNet?.length ? egress({ allow: allowNetRules(opts.allowNet) }) : null,
  });
  const mode = opts.tools ? "tools" : "codemode";
  const network = opts.allowNet ?? [];
  const served = opts.http ? await serveMcpHttp(codeMode, { mode, network, port: opts.port, host: opts.host, tokens: opts.token }) : await serveMcpStdio(codeMode, { mode, network });
  const summary = !tools.length ? `mayfly mcp: no tools, execute runs code (network: ${network.join(", ") || "none"})`
    : `mayfly mcp: ${tools.length} operations, ${mode === "tools" ? "one tool each" : "search + execute"}`;
  if ("url" in served) process.stdout.write(`${summary}, listening on ${served.url}\n`);
  else process.stderr.write(`${summary}, on stdio\n`);
  return {
    close: async () => {
      await served.close();
      await Promise.all(closers.map((c) => c()));
      await loader.close();
    },
  };
}

function parseHeader(spec: string, env: Record<string, string | undefined>): [string, string] {
  const i = spec.indexOf(":");
  if (i <= 0) throw new InvalidArgumentError(`--header "${spec}": expected "Name: value".`);
  const value = spec.slice(i + 1).trim().replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) throw new InvalidArgumentError(`--header "${spec.slice(0, i)}": the environment variable ${name} is not set.`);
    return v;
  });
  return [spec.slice(0, i).trim().toLowerCase(), value];
}

/** `name=command arg arg` (split on spaces; quote-free by design, a wrapper script covers the rest). */
function parseMcpServer(spec: string): { namespace: string; command: string; args: string[] } {
  const m = /^([A-Za-z_$][\w$]*)=(.+)$/.exec(spec.trim());
  if (!m) throw new InvalidArgumentError(`--mcp-server "${spec}": expected name=command [args...].`);
  const [command, ...args] = m[2]!.trim().split(/\s+/);
  return { namespace: m[1]!, command: command!, args };
}
