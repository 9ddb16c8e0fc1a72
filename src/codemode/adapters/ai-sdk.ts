/**
 * Code Mode for the Vercel AI SDK (`ai`): `search` and `execute` as AI SDK tools, built with the
 * SDK's own `tool()` so any model provider can call them from generateText/streamText. `ai` is
 * loaded on first use: importing mayfly should not pay for it.
 */
import type { ToolSet } from "ai";
import { z } from "zod";
import type { CodeMode } from "../codemode.ts";

/** `{ search, execute }` for `generateText({ tools: await aiSdkTools(codeMode) })`. */
export async function aiSdkTools(codeMode: CodeMode): Promise<ToolSet> {
  const { tool } = await import("ai");
  const d = await codeMode.describe();
  return {
    search: tool({
      description: d.search,
      inputSchema: z.object({
        query: z.string().optional().describe("Keywords"),
        code: z.string().optional().describe("async () => ... over spec.operations"),
        limit: z.number().int().min(1).max(50).optional(),
      }).refine((v) => v.query !== undefined || v.code !== undefined, "Give `query` or `code`."),
      execute: async ({ query, code, limit }): Promise<unknown> => (code !== undefined ? codeMode.searchWithCode(code) : codeMode.search(query!, limit)),
    }),
    execute: tool({
      description: d.execute,
      inputSchema: z.object({ code: z.string().describe("JavaScript or TypeScript") }),
      execute: async ({ code }): Promise<unknown> => codeMode.execute(code),
    }),
  };
}
