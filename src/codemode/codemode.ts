/**
 * CodeMode: a set of tools offered to a model as two operations, `search` and `execute`, with the
 * descriptions a model reads. Small APIs get their declarations inline in `execute`'s description;
 * large ones list their namespaces and send the model to `search` first.
 */
import { ToolSourceError } from "./errors.ts";
import { execute, type ExecuteOptions, type ExecuteResult } from "./execute.ts";
import { ToolIndex, type SearchResult } from "./search.ts";
import type { Tool } from "./tool.ts";
import { generateTypes, groupByNamespace } from "./typegen.ts";

/** loader, tools, limits (over DEFAULT_EXECUTE_LIMITS), globalOutbound, toolTimeoutMs: as for execute(). */
export interface CodeModeOptions extends Omit<ExecuteOptions, "globals" | "prelude"> {
  /** Up to this many tools, execute's description carries every declaration (default 30). */
  inlineTypesUpTo?: number;
}

export interface ToolDescriptions {
  search: string;
  execute: string;
}

export class CodeMode {
  readonly tools: readonly Tool[];
  readonly index: ToolIndex;
  private readonly options: CodeModeOptions;
  private typesCache?: Promise<string>;

  constructor(options: CodeModeOptions) {
    const seen = new Set<string>();
    for (const t of options.tools) {
      const key = `${t.namespace}.${t.name}`;
      if (seen.has(key)) throw new ToolSourceError(`Two tools are named ${key}.`);
      seen.add(key);
    }
    this.options = options;
    this.tools = options.tools;
    this.index = new ToolIndex(options.tools);
  }

  /** Runs model-written code with the tools; guest faults come back in `error`, never thrown. */
  execute(code: string): Promise<ExecuteResult> {
    const { loader, limits, globalOutbound, toolTimeoutMs } = this.options;
    return execute(code, { loader, tools: this.tools, limits, globalOutbound, toolTimeoutMs });
  }

  /** Ranked keyword search; the declarations of the best matches. */
  search(query: string, limit?: number): Promise<SearchResult> {
    return this.index.search(query, limit);
  }

  /** Code over `spec` in an offline isolate (see ToolIndex.searchWithCode). */
  searchWithCode(code: string): Promise<ExecuteResult & { types: string }> {
    const { loader, limits } = this.options;
    // The catalog of a large API is big: give the search isolate room for it.
    return this.index.searchWithCode(code, { loader, limits: { memoryMb: 256, ...limits } });
  }

  /** Every declaration (for small APIs, or to show a person). */
  types(): Promise<string> {
    this.typesCache ??= generateTypes(this.tools);
    return this.typesCache;
  }

  get inlinesTypes(): boolean {
    return this.tools.length <= (this.options.inlineTypesUpTo ?? 30);
  }

  /** What a model reads about the two operations. */
  async describe(): Promise<ToolDescriptions> {
    const namespaces = [...groupByNamespace(this.tools)].map(([ns, list]) => `${ns} (${list.length} operations)`).join(", ");
    const execute = [
      "Run JavaScript or TypeScript in a fresh sandbox whose only capabilities are the API's operations; no network, no filesystem.",
      "Write an async arrow function, or statements ending in `return` or in an expression whose value is the result. Call operations as `await namespace.operation(input)`; a failed call throws (catch it to recover). console.log output is returned in `logs`. Return only what you need: the result is JSON.",
      this.inlinesTypes ? `The API:\n${await this.types()}` : `Namespaces: ${namespaces}. Use search first to find operations and their TypeScript declarations.`,
    ].join("\n");
    const search = [
      `Find API operations and get their TypeScript declarations. Namespaces: ${namespaces}.`,
      "Give `query` (keywords, ranked), or `code`: an async arrow function over `spec.operations` (each { tool, description, keywords, inputSchema, outputSchema }, $refs resolved) that returns matching operations; their declarations come back too.",
    ].join("\n");
    return { search, execute };
  }
}
