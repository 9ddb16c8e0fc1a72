/**
 * `@cloudflare/codemode`'s Executor contract, implemented on mayfly, so that package's
 * createCodeTool() runs on Node: each provider's functions become a namespace in a fresh mayfly
 * isolate, with mayfly's CPU, memory and wall-clock limits (Cloudflare's executor enforces only a
 * timeout). The interface is matched structurally; mayfly does not depend on the package.
 */
import { execute, type ExecuteOptions } from "../execute.ts";
import type { Tool } from "../tool.ts";

type Fn = (...args: unknown[]) => Promise<unknown>;

/** @cloudflare/codemode's ResolvedProvider. */
export interface CodemodeProvider {
  name: string;
  fns: Record<string, Fn>;
  prelude?: string;
}

/** @cloudflare/codemode's ExecuteResult. */
export interface CodemodeExecuteResult {
  result: unknown;
  error?: string;
  logs?: string[];
}

export type MayflyExecutorOptions = Pick<ExecuteOptions, "loader" | "limits" | "globalOutbound" | "toolTimeoutMs">;

export class MayflyExecutor {
  private readonly options: MayflyExecutorOptions;

  constructor(options: MayflyExecutorOptions) {
    this.options = options;
  }

  /** Never throws: a failure is in `error`, as the contract asks. */
  async execute(code: string, providersOrFns: CodemodeProvider[] | Record<string, Fn>, options?: { connectors?: unknown[] }): Promise<CodemodeExecuteResult> {
    if (options?.connectors?.length) return { result: undefined, error: "MayflyExecutor does not support connectors (Workers RPC stubs); pass tools as providers." };
    const providers = Array.isArray(providersOrFns) ? providersOrFns : [{ name: "codemode", fns: providersOrFns }];
    const tools: Tool[] = providers.flatMap((p) => Object.entries(p.fns).map(([name, fn]): Tool => ({
      namespace: p.name,
      name,
      // The package validates inputs in its own fns (resolveProvider), so they pass through here.
      inputSchema: {},
      validate: (input) => input,
      invoke: (input) => fn(input),
    })));
    try {
      const out = await execute(code, { ...this.options, tools, prelude: providers.map((p) => p.prelude ?? "").join("\n") });
      return out.error ? { result: undefined, error: `${out.error.name}: ${out.error.message}`, logs: out.logs } : { result: out.result, logs: out.logs };
    } catch (e) {
      return { result: undefined, error: `${(e as Error).name}: ${(e as Error).message}` };
    }
  }
}
