/**
 * execute(code): runs model-written code in a fresh isolate whose only capabilities are the tools.
 * Each namespace is a global object in the isolate; `ns.tool(input)` crosses to the host through
 * one rpc() dispatcher, where the input is validated and the tool invoked. Guest faults (a throw,
 * a syntax error, a limit) come back in `error`; execute() itself does not throw for them.
 */
import { rpc } from "../bindings/rpc/index.ts";
import type { TailEvent } from "../bindings/tails/index.ts";
import type { Limits } from "../engine/limits.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import { ToolNotFoundError, ToolRejectedError } from "./errors.ts";
import { normalizeCode } from "./normalize-code.ts";
import type { Tool } from "./tool.ts";

export interface ExecuteOptions {
  loader: WorkerLoader;
  tools: readonly Tool[];
  /** Merged over DEFAULT_EXECUTE_LIMITS. */
  limits?: Partial<Limits>;
  /** Where the code's own fetch() goes; none by default (tools are the only way out). */
  globalOutbound?: { fetch(request: Request): Promise<Response> | Response } | null;
  /** Time one tool call may take (default 30 s). */
  toolTimeoutMs?: number;
  /** Extra values (or bindings) visible as globals, e.g. a search spec. Names must not clash with namespaces. */
  globals?: Record<string, unknown>;
  /** Guest-side JavaScript run after the namespaces exist and before the code (e.g. helpers on a namespace). */
  prelude?: string;
}

export interface ExecuteResult {
  /** The code's value, as JSON would carry it (undefined when it returned nothing or failed). */
  result: unknown;
  /** console output, "[level] " before anything but log. */
  logs: string[];
  error?: { name: string; message: string };
  /** toolCalls: calls the code made; replayed (durable runs): how many of them the journal answered. */
  metrics: { cpuMs: number; wallMs: number; toolCalls: number; replayed?: number };
  /** Durable Code Mode only: the run's id in the journal (for approve, reject, journal). */
  runId?: string;
  /** Durable Code Mode only: "paused" waits for approve(runId) or reject(runId, reason). */
  status?: "completed" | "paused" | "failed";
  /** Durable Code Mode only, when paused: the call waiting for approval (nothing after it ran). */
  pending?: { tool: string; input: unknown };
}

/** Sensible for model-written glue code: a runaway loop is cut off after one CPU second. */
export const DEFAULT_EXECUTE_LIMITS: Readonly<Partial<Limits>> = Object.freeze({ cpuMs: 1_000, wallMs: 30_000, memoryMb: 64 });

export async function execute(code: string, options: ExecuteOptions): Promise<ExecuteResult> {
  return runCode(code, options, plainCalls(options.tools));
}

/**
 * @internal How a run's tool calls are answered. Plain execute() calls the tools; durable Code Mode
 * journals and replays them. `dispatcher` is the target of the guest's TOOLS binding; `end` ends the
 * isolate at once (a pause, a divergence). `prelude` may set `__bind(tools, env)`, which makes the
 * guest's call function from that binding.
 */
export interface CallPlan {
  dispatcher(end: () => void, metrics: ExecuteResult["metrics"]): object;
  prelude?: string;
  globals?: Record<string, unknown>;
  /** The binding's own timeout, when the dispatcher applies the tool timeout itself. */
  rpcTimeoutMs?: number;
}

/** Tools called directly. A tool that requires approval is refused: only a journal can pause a run. */
function plainCalls(list: readonly Tool[]): CallPlan {
  const tools = indexTools(list);
  return {
    dispatcher: (_end, metrics) => ({
      invoke: async (namespace: string, name: string, input: unknown) => {
        const tool = findTool(tools, namespace, name);
        metrics.toolCalls++;
        if (tool.requiresApproval) {
          throw new ToolRejectedError(`${namespace}.${name} requires approval, and this run cannot pause for it: use a CodeMode with a journal (durable Code Mode).`, "no journal to pause in");
        }
        return tool.invoke(validateInput(tool, input));
      },
    }),
  };
}

export function findTool(tools: Map<string, Map<string, Tool>>, namespace: string, name: string): Tool {
  const tool = tools.get(namespace)?.get(name);
  if (!tool) throw new ToolNotFoundError(`${namespace}.${name} is not a tool. Tools in ${namespace}: ${[...(tools.get(namespace)?.keys() ?? [])].join(", ") || "none"}.`);
  return tool;
}

/** `ns.tool()` for a tool whose fields are all optional means `{}`, as its declaration promises. */
export function validateInput(tool: Tool, input: unknown): unknown {
  return tool.validate(input === undefined && tool.inputSchema.type === "object" ? {} : input);
}

/** @internal execute() with the calls answered by `plan`. */
export async function runCode(code: string, options: ExecuteOptions, plan: CallPlan): Promise<ExecuteResult> {
  const metrics = { cpuMs: 0, wallMs: 0, toolCalls: 0 };
  let body: string;
  try {
    body = normalizeCode(code);
  } catch (e) {
    return { result: undefined, logs: [], error: errorShape(e), metrics };
  }
  const namespaces = [...new Set(options.tools.map((t) => t.namespace))];
  const globals = { ...options.globals, ...plan.globals };
  let stub: ReturnType<WorkerLoader["load"]> | undefined;
  const dispatcher = plan.dispatcher(() => stub?.dispose(), metrics);
  let trace: TailEvent | undefined;
  let traced: () => void = () => {};
  const tracedPromise = new Promise<void>((r) => (traced = r));
  const started = performance.now();
  const limits = { ...DEFAULT_EXECUTE_LIMITS, ...options.limits };
  let result: unknown;
  let error: ExecuteResult["error"];
  try {
    // Inside the try: a global that cannot cross (DataCloneError) is a fault of this run too.
    stub = options.loader.load({
      compatibilityDate: "2025-06-01",
      mainModule: "main.js",
      modules: { "main.js": guestModule(body, namespaces, Object.keys(globals), [options.prelude ?? "", plan.prelude ?? ""].join("\n")) },
      env: { TOOLS: rpc(dispatcher, { timeoutMs: plan.rpcTimeoutMs ?? options.toolTimeoutMs }), ...globals },
      limits,
      globalOutbound: options.globalOutbound ?? null,
      tails: [(e: TailEvent) => { trace = e; traced(); }],
    });
    try {
      const json = await stub.getEntrypoint<{ run(): Promise<string | undefined> }>().run();
      result = json === undefined ? undefined : JSON.parse(json);
    } finally {
      stub.dispose();
    }
  } catch (e) {
    error = errorShape(e);
  }
  // The trace of a run that left work behind (timers) arrives once that work ends; wait only briefly.
  await Promise.race([tracedPromise, new Promise((r) => setTimeout(r, 250).unref())]);
  metrics.cpuMs = trace?.cpuTime ?? 0;
  metrics.wallMs = trace?.wallTime ?? performance.now() - started;
  const logs = (trace?.logs ?? []).map((l) => (l.level === "log" ? "" : `[${l.level}] `) + l.message.join(" "));
  return error ? { result: undefined, logs, error, metrics } : { result, logs, metrics };
}

export function indexTools(list: readonly Tool[]): Map<string, Map<string, Tool>> {
  const m = new Map<string, Map<string, Tool>>();
  for (const t of list) {
    const ns = m.get(t.namespace) ?? new Map<string, Tool>();
    ns.set(t.name, t);
    m.set(t.namespace, ns);
  }
  return m;
}

/**
 * The isolate's one module. Namespaces are Proxies so any `ns.name(...)` reaches the host, which
 * answers an unknown name with ToolNotFoundError listing the real ones. The value goes back as JSON
 * text, so whatever the code returns (class instances, functions inside) crosses as JSON would.
 */
function guestModule(fn: string, namespaces: string[], globals: string[], prelude: string): string {
  return `import { WorkerEntrypoint } from "cloudflare:workers";
let __call = () => { throw new Error("tools are available only while the code runs"); };
let __bind = (tools) => (ns, name, input) => tools.invoke(ns, name, input);
const __namespace = (ns) => new Proxy({}, {
  get: (_, name) => (typeof name === "string" && name !== "then" ? (input) => __call(ns, name, input) : undefined),
});
${namespaces.map((ns) => `const ${ns} = __namespace(${JSON.stringify(ns)});`).join("\n")}
${globals.map((g) => `let ${g};`).join("\n")}
${prelude}
const __main = ${fn};
export default class extends WorkerEntrypoint {
  async run() {
    ${globals.map((g) => `${g} = this.env[${JSON.stringify(g)}];`).join("\n    ")}
    __call = __bind(this.env.TOOLS, this.env);
    const value = await __main();
    return value === undefined ? undefined : JSON.stringify(value);
  }
}
`;
}

export function errorShape(e: unknown): { name: string; message: string } {
  const err = e as Error;
  return { name: err?.name ?? "Error", message: err?.message ?? String(e) };
}
