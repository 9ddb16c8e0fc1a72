#!/usr/bin/env node
/**
 * The `mayfly` command. commander parses the command line (subcommands, --help everywhere, clear
 * errors for bad flags).
 */
import { Command, InvalidArgumentError } from "commander";
import { runWorkerFile } from "./run.ts";
import { startMcp, type McpCommandOptions } from "./mcp.ts";
import { addWorkspaceCommands } from "./workspace.ts";
import { addPluginCommands } from "./plugin.ts";
import { addClusterCommands, clusterFromFlags, type ClusterFlags } from "./cluster.ts";
import { serverOptionsFromConfig, startServer, type ServerOptions } from "../server/index.ts";
import { loadConfig, PERMISSION_PATTERN } from "../server/config.ts";
import { pino } from "pino";
import { resolve } from "node:path";
import { registryConfigFromEnvironment } from "../bundler/npm/index.ts";
import type { Permission } from "../server/app.ts";

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number.");
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number.");
  return n;
}

function positiveCount(value: string): number {
  const n = count(value);
  if (n === 0) throw new InvalidArgumentError("expected a positive whole number.");
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port number (0-65535).");
  return n;
}

const collect = (value: string, previous: string[]) => [...previous, value];
const list = (value: string, previous: string[] = []) => [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

const program = new Command()
  .name("mayfly")
  .description("Run untrusted JavaScript and TypeScript in fresh V8 isolates, Cloudflare Workers style.")
  .showHelpAfterError();

program
  .command("run")
  .description("run a worker file in a fresh isolate and send it one request")
  .argument("<file>", "the worker: a .ts or .js module with `export default { fetch }`")
  .option("--allow-net <hosts>", "hosts the worker may fetch (comma-separated); nothing without it", list)
  .option("--kv <NAME[=dir]>", "bind a KV namespace as env.NAME (repeatable)", collect, [])
  .option("--sql <NAME[=dir]>", "bind a SQL (D1) database as env.NAME (repeatable)", collect, [])
  .option("--workspace <NAME[=workspace]>", "bind a workspace (a durable file system) as env.NAME (repeatable)", collect, [])
  .option("--workspace-read <NAME[=workspace]>", "bind a workspace read-only: every write is EACCES (repeatable)", collect, [])
  .option("--data-dir <dir>", "where --kv, --sql and --workspace keep their data", ".mayfly/data")
  .option("--cpu-ms <n>", "CPU time limit", positiveNumber)
  .option("--memory-mb <n>", "memory limit", positiveNumber)
  .option("--wall-ms <n>", "wall-clock limit", positiveNumber)
  .option("--json", "print the response, logs, outcome and cost as JSON")
  .option("-X, --method <method>", "request method", "GET")
  .option("-H, --header <header>", "request header, \"Name: value\" (repeatable)", collect, [])
  .option("-d, --data <body>", "request body (\"-\" reads standard input)")
  .option("--url <url>", "request URL", "http://localhost/")
  .option("--scheduled [cron]", "run the scheduled() handler (a Cron Trigger) instead of sending a request")
  .option("--package-json <file>", "npm dependencies the worker imports, resolved from npm's configured registry (npm_config_registry, .npmrc) and bundled; install scripts never run")
  .option("--lockfile <file>", "install exactly this package-lock.json (default: the one beside --package-json, if any)")
  .option("--npm-cache-dir <dir>", "where resolved, verified packages and bundles are cached", ".mayfly/npm")
  .option("--npm-allow <names>", "packages that may be installed, comma-separated (@scope/* for a scope); default any", list)
  .option("--allow-browser", "bind env.BROWSER: headless Chromium whose pages reach only the --allow-net hosts")
  .option("--browser-max-pages <n>", "pages one run may open with --allow-browser (default 4)", positiveCount)
  .option("--allow-exec", "bind env.SH: the OS sandbox (bubblewrap) on the first --workspace, else on workspace \"default\" bound as env.FS; its network is --allow-net's")
  .option("--typecheck", "type-check the worker's TypeScript (strict, Workers types) first; errors as file:line:col")
  .action(async (file: string, opts) => {
    const result = await runWorkerFile(file, opts, readStdin);
    if (result.stdout.length) process.stdout.write(result.stdout);
    if (result.stderr) process.stderr.write(result.stderr);
    process.exitCode = result.exitCode;
  });

program
  .command("serve")
  .description("start the HTTP API and playground (POST /v1/run, /w/<name>/*, /healthz, /metrics)")
  .option("-c, --config <file>", "mayfly.config.json: named workers, tokens, port (flags override it)")
  .option("-p, --port <n>", "port (0: any free port; default 8787)", port)
  .option("--host <host>", "address to listen on (beyond loopback, tokens are required; default 127.0.0.1)")
  .option("--token <TOKEN[=perm,perm]>", "a bearer token and what it may do: run, metrics, workers, worker:<name> (default run,metrics,workers; repeatable)", collect, [])
  .option("--executors <n>", "executor processes holding the isolates (default: one per core)", positiveNumber)
  .option("-w, --watch", "rebuild named workers when their files or the config file change")
  .option("--max-cpu-ms <n>", "the most cpuMs a POST /v1/run may ask for (default 30000)", positiveNumber)
  .option("--max-wall-ms <n>", "the most wallMs a run may ask for (default 60000)", positiveNumber)
  .option("--max-memory-mb <n>", "the most memoryMb a run may ask for (default 512)", positiveNumber)
  .option("--max-subrequests <n>", "the most subRequests a run may ask for (default 1000)", count)
  .option("--max-request-body-bytes <n>", "POST /v1/run bodies (default 1 MiB)", positiveCount)
  .option("--max-worker-body-bytes <n>", "request bodies to /w/<name>/* (default 100 MiB)", positiveCount)
  .option("--max-in-flight <n>", "runs in flight on the server; beyond it 429 (default 256)", positiveCount)
  .option("--max-in-flight-per-token <n>", "runs in flight per token; beyond it 429 (default 64)", positiveCount)
  .option("--npm-cache-dir <dir>", "grant npm packages (packageJson) to named workers and POST /v1/run, cached here")
  .option("--npm-allow <names>", "packages that may be installed, comma-separated (@scope/* for a scope); default any", list)
  .option("--cluster", "cluster mode: named workers, storage and actors shared with other hosts through PostgreSQL (see README)")
  .option("--postgres-url <url>", "the cluster's PostgreSQL (default MAYFLY_POSTGRES_URL)")
  .option("--host-id <id>", "this host's id in the cluster, unique per live host (default MAYFLY_HOST_ID, else the host name)")
  .option("--advertise <host:port>", "where other hosts reach this one (default MAYFLY_ADVERTISE, else the listening address)")
  .option("--cluster-secret <secret>", "shared by the cluster's hosts, authenticates forwarded actor calls (default MAYFLY_CLUSTER_SECRET)")
  .option("--lease-ms <n>", "how long a dead host keeps its actors before another takes them (default 10000)", positiveCount)
  .option("--drain-ms <n>", "on SIGTERM, how long in-flight requests may take before connections are cut (default 30000)", count)
  .action(async (opts: ServeFlags) => {
    const tokens = opts.token.length ? Object.fromEntries(opts.token.map(parseToken)) : undefined;
    const bounds = {
      maxCpuMs: opts.maxCpuMs, maxWallMs: opts.maxWallMs, maxMemoryMb: opts.maxMemoryMb, maxSubrequests: opts.maxSubrequests,
      maxRequestBodyBytes: opts.maxRequestBodyBytes, maxWorkerBodyBytes: opts.maxWorkerBodyBytes,
      maxInFlight: opts.maxInFlight, maxInFlightPerToken: opts.maxInFlightPerToken,
    };
    const flags = { port: opts.port, host: opts.host, tokens, bounds, loader: opts.executors ? { executors: opts.executors } : undefined };
    let options: ServerOptions = flags;
    try {
      options = opts.config ? serverOptionsFromConfig(loadConfig(opts.config, process.env), flags) : flags;
      const cluster = clusterFromFlags(opts, process.env, options.cluster);
      options = { ...options, cluster };
    } catch (e) {
      program.error(`mayfly: ${(e as Error).message}`);
    }
    if (opts.npmCacheDir) options.npm = { ...options.npm, cacheDir: resolve(opts.npmCacheDir) };
    if (opts.npmAllow && options.npm) options.npm.allow = opts.npmAllow;
    // The front door: npm's registry configuration (npm_config_registry, .npmrc) is read here, once;
    // a registry named in the config file wins.
    if (options.npm) {
      const fromNpm = registryConfigFromEnvironment({ cwd: options.baseDir });
      options.npm = { ...fromNpm, ...options.npm, registry: options.npm.registry ?? fromNpm.registry };
    }
    // Structured JSON logs go to stderr; stdout carries the one line a person or script looks for.
    // Written asynchronously (lines arriving while a write is in flight go out together: a synchronous
    // write per request cost ~8 % of the host's CPU under load) and flushed before exit.
    const logs = pino.destination({ dest: 2, sync: false });
    const server = await startServer({ ...options, watch: opts.watch, configEnv: process.env, log: pino({ name: "mayfly" }, logs) }).catch((e: Error) => program.error(`mayfly: ${e.name}: ${e.message}`));
    process.stdout.write(`mayfly listening on ${server.url}\n  playground: ${server.url}/\n${server.workers().map((w) => `  worker ${w}: ${server.url}/w/${w}/\n`).join("")}${(server.plugins?.list() ?? []).map((p) => `  plugin ${p.name} ${p.version}: ${server.url}/p/${p.name}/\n`).join("")}`);
    const stop = () => void server.close().then(() => {
      logs.flushSync();
      process.exit(0);
    });
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });

interface ServeFlags extends ClusterFlags {
  config?: string; port?: number; host?: string; token: string[]; executors?: number; watch?: boolean;
  maxCpuMs?: number; maxWallMs?: number; maxMemoryMb?: number; maxSubrequests?: number;
  maxRequestBodyBytes?: number; maxWorkerBodyBytes?: number; maxInFlight?: number; maxInFlightPerToken?: number;
  npmCacheDir?: string; npmAllow?: string[];
}

function parseToken(spec: string): [string, Permission[]] {
  const [token, perms] = spec.split("=");
  const list = (perms ? perms.split(",") : ["run", "metrics", "workers"]).map((p) => p.trim());
  for (const p of list) if (!PERMISSION_PATTERN.test(p)) throw new InvalidArgumentError(`unknown permission "${p}" (run, metrics, workers, worker:<name>, plugins, plugin:<name>)`);
  return [token!, list as Permission[]];
}

// Code Mode as an MCP server (issue 6): its own block, see ./mcp.ts.
program
  .command("mcp")
  .description("serve Code Mode (search + execute over typed tools) as an MCP server, over stdio or HTTP; with no tool source, execute is a plain sandboxed code runner")
  .option("--openapi <file>", "an OpenAPI 3 document (JSON): its operations become typed tools")
  .option("--namespace <name>", "the global the OpenAPI operations hang on (default: from the document's title)")
  .option("--base-url <url>", "where the API's requests go (default: the document's first server)")
  .option("-H, --header <header>", "\"Name: value\" added to every API request by the gateway, never shown to code; ${VAR} is read from the environment (repeatable)", collect, [])
  .option("--allow-private", "let the API's host resolve to a private or loopback address")
  .option("--allow-net <hosts>", "hosts the executed code may fetch itself (comma-separated); nothing without it", list)
  .option("--mcp-server <name=command>", "an MCP server to start (stdio) whose tools join under `name` (repeatable)", collect, [])
  .option("--tools", "expose one MCP tool per operation instead of search + execute")
  .option("--http", "serve Streamable HTTP at /mcp instead of stdio")
  .option("-p, --port <n>", "HTTP port (0: any free port)", port, 8788)
  .option("--host <host>", "HTTP address (beyond loopback, --token is required)", "127.0.0.1")
  .option("--token <token>", "a bearer token HTTP clients must present (repeatable)", collect, [])
  .option("--cpu-ms <n>", "CPU time limit of one execute", positiveNumber)
  .option("--memory-mb <n>", "memory limit of one execute", positiveNumber)
  .option("--wall-ms <n>", "wall-clock limit of one execute", positiveNumber)
  .action(async (opts: McpCommandOptions) => {
    const server = await startMcp(opts, process.env).catch((e: Error) => program.error(`mayfly: ${e.message}`));
    const stop = () => void server.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (!opts.http) process.stdin.once("end", stop);
  });

// Workspaces (issue 11): their own block, see ./workspace.ts.
addWorkspaceCommands(program);

// Plugin manifests (issue 12): their own block, see ./plugin.ts.
addPluginCommands(program);

// Cluster mode (issue 15): its own block, see ./cluster.ts.
addClusterCommands(program);

await program.parseAsync(process.argv);
