// Code Mode's token cost: the tool definitions a model sees for GitHub's whole REST API
// (@octokit/openapi, every operation), one MCP tool per operation vs mayfly's search + execute.
// Tokens by gpt-tokenizer (o200k_base, the GPT-4o/o-series encoding).
// Run alone: node bench/codemode-tokens.ts   (bench/run.ts runs it at its end)
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { countTokens } from "gpt-tokenizer";
import { CodeMode, WorkerLoader, codeModeDefinitions, openApiTools, perOperationDefinitions } from "../src/index.ts";

export async function codemodeTokensTable(): Promise<string> {
  const specPath = createRequire(import.meta.url).resolve("@octokit/openapi/generated/api.github.com.json");
  const spec = JSON.parse(await readFile(specPath, "utf8")) as Record<string, unknown>;
  let t = performance.now();
  const tools = await openApiTools({ namespace: "github", spec, baseUrl: "https://api.github.com" });
  const loadMs = performance.now() - t;
  const loader = new WorkerLoader({ executors: 1 });
  await loader.ready();
  try {
    const cm = new CodeMode({ loader, tools });
    const perOperation = countTokens(JSON.stringify(perOperationDefinitions(cm)));
    const codeMode = countTokens(JSON.stringify(await codeModeDefinitions(cm)));
    t = performance.now();
    const found = await cm.search("create an issue comment", 5);
    const searchMs = performance.now() - t;
    t = performance.now();
    const byCode = await cm.searchWithCode(`spec.operations.filter((op) => op.keywords.includes("DELETE") && op.tool.startsWith("github.gists")).map((op) => op.tool)`);
    const codeSearchMs = performance.now() - t;
    const rows: [string, string][] = [
      ["operations (api.github.com)", String(tools.length)],
      ["one tool per operation: tokens", perOperation.toLocaleString("en-US")],
      ["code mode (search + execute): tokens", codeMode.toLocaleString("en-US")],
      ["reduction", `${(100 * (1 - codeMode / perOperation)).toFixed(2)} %`],
      ["keyword search, 5 results: ms / tokens returned", `${searchMs.toFixed(0)} / ${countTokens(found.types)} (top: ${found.matches[0]?.tool})`],
      ["code search over spec (offline isolate): ms", `${codeSearchMs.toFixed(0)} (${byCode.error ? `${byCode.error.name}: ${byCode.error.message}` : `${(byCode.result as unknown[]).length} operations`})`],
      ["load + $ref-resolve the document: ms", loadMs.toFixed(0)],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    return ["Code Mode tokens — GitHub REST API (gpt-tokenizer o200k_base)", ...rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`)].join("\n");
  } finally {
    await loader.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await codemodeTokensTable());
