/**
 * search(): for APIs too large to describe up front. Two ways in, as a model prefers:
 * - keywords, ranked (BM25 by MiniSearch, a maintained full-text index, with prefix and fuzzy
 *   matching) over each tool's name, description, tags, method and path;
 * - code: an async function over `spec`, a preprocessed catalog of every operation with its
 *   `$ref`-resolved schemas, run in an offline isolate (no tools, no network).
 * Either way the answer carries the TypeScript declarations of the operations found.
 */
import MiniSearch from "minisearch";
import { execute, type ExecuteOptions, type ExecuteResult } from "./execute.ts";
import type { Tool } from "./tool.ts";
import { generateTypes } from "./typegen.ts";

export interface SearchMatch {
  /** `namespace.name`, as the code calls it. */
  tool: string;
  description?: string;
  score?: number;
}

export interface SearchResult {
  matches: SearchMatch[];
  /** Declarations of the matched tools. */
  types: string;
}

interface Doc {
  id: number;
  name: string;
  namespace: string;
  summary: string;
  description: string;
  keywords: string;
}

// Words that match nearly every operation and only blur the ranking.
const STOP_WORDS = new Set(["a", "an", "the", "to", "of", "for", "in", "on", "by", "and", "or", "with", "from", "is", "my", "all"]);

/** A keyword index over tools; build once, query many times. */
export class ToolIndex {
  readonly tools: readonly Tool[];
  private readonly index: MiniSearch<Doc>;

  constructor(tools: readonly Tool[]) {
    this.tools = tools;
    this.index = new MiniSearch<Doc>({
      fields: ["name", "namespace", "summary", "description", "keywords"],
      storeFields: ["summary"],
      processTerm: (term) => (STOP_WORDS.has(term.toLowerCase()) ? null : term.toLowerCase()),
      // The summary line says what an operation does; the long description mostly says how.
      searchOptions: {
        boost: { summary: 4, name: 3, keywords: 1.5, description: 0.5 },
        prefix: true,
        fuzzy: (term) => (term.length > 5 ? 0.2 : false),
        combineWith: "OR",
        // A short summary made of the query's words ("Get a repository") is the operation asked for;
        // BM25 alone prefers long names that repeat a word.
        boostDocument: (_id, term, stored) => {
          const words = String(stored?.summary ?? "").toLowerCase().split(/\W+/).filter((w) => w && !STOP_WORDS.has(w));
          return words.some((w) => w === term || w === `${term}s` || `${w}s` === term) ? 1 + 3 / Math.max(words.length, 1) : 1;
        },
      },
    });
    this.index.addAll(tools.map((t, id) => ({
      id,
      // issuesListForRepo → "issues List For Repo": camelCase words are searchable on their own.
      name: `${t.name} ${t.name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ")}`,
      namespace: t.namespace,
      summary: firstLine(t.description) ?? "",
      description: t.description ?? "",
      keywords: (t.keywords ?? []).join(" "),
    })));
  }

  /** The best `limit` tools for `query`, most relevant first. */
  async search(query: string, limit = 5): Promise<SearchResult> {
    const hits = this.index.search(query).slice(0, limit);
    const found = hits.map((h) => this.tools[h.id as number]!);
    return {
      matches: found.map((t, i) => ({ tool: `${t.namespace}.${t.name}`, description: firstLine(t.description), score: round(hits[i]!.score) })),
      types: found.length ? await generateTypes(found) : "",
    };
  }

  /** The catalog search code sees as `spec`. */
  catalog(): { operations: Record<string, unknown>[] } {
    return {
      operations: this.tools.map((t) => ({
        tool: `${t.namespace}.${t.name}`, namespace: t.namespace, name: t.name, description: t.description ?? "",
        keywords: t.keywords ?? [], inputSchema: t.inputSchema, outputSchema: t.outputSchema,
      })),
    };
  }

  /**
   * Runs `code` against `spec` offline. If it returns operations (objects with a `tool` field, or
   * "namespace.name" strings), their declarations come back in `types`.
   */
  async searchWithCode(code: string, options: Omit<ExecuteOptions, "tools" | "globals" | "globalOutbound">): Promise<ExecuteResult & { types: string }> {
    const run = await execute(code, { ...options, tools: [], globalOutbound: null, globals: { spec: this.catalog() } });
    const named = new Set((Array.isArray(run.result) ? run.result : []).map((r: unknown) => (typeof r === "string" ? r : (r as { tool?: unknown })?.tool)));
    const found = this.tools.filter((t) => named.has(`${t.namespace}.${t.name}`));
    return { ...run, types: found.length ? await generateTypes(found) : "" };
  }
}

function firstLine(s: string | undefined): string | undefined {
  return s?.split("\n")[0];
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
