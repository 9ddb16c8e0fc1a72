import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { CodeMode, MayflyExecutor, aiSdkTools, functionTools, installCloudflareWorkersShim } from "../../src/index.ts";
import { useLoader } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 5, text: 5, reasoning: 0 } };
const call = (id: string, toolName: string, input: unknown) => ({
  content: [{ type: "tool-call" as const, toolCallId: id, toolName, input: JSON.stringify(input) }],
  finishReason: { unified: "tool-calls" as const, raw: "tool_calls" }, usage, warnings: [],
});
const say = (text: string) => ({ content: [{ type: "text" as const, text }], finishReason: { unified: "stop" as const, raw: "stop" }, usage, warnings: [] });

const inventory = { apples: 3, pears: 0 };

describe("Code Mode adapters", () => {
  test("Vercel AI SDK: a scripted model searches, then executes code that calls two tools", async () => {
    const cm = new CodeMode({
      loader: ctx.loader,
      tools: functionTools("shop", {
        stock: { description: "Units in stock of a product", inputSchema: z.object({ product: z.string() }), outputSchema: z.number(), execute: ({ product }: { product: string }) => (inventory as Record<string, number>)[product] ?? 0 },
        order: { description: "Order more units of a product", inputSchema: z.object({ product: z.string(), units: z.number().int().positive() }), execute: ({ product, units }: { product: string; units: number }) => ({ ordered: units, product }) },
      }),
    });
    const model = new MockLanguageModelV4({
      doGenerate: [
        call("c1", "search", { query: "order units" }),
        call("c2", "execute", { code: "const out = [];\nfor (const p of ['apples', 'pears']) if ((await shop.stock({ product: p })) === 0) out.push(await shop.order({ product: p, units: 10 }));\nreturn out;" }),
        say("Ordered 10 pears."),
      ],
    });
    const result = await generateText({ model, tools: await aiSdkTools(cm), stopWhen: stepCountIs(5), prompt: "Restock anything we are out of." });
    assert.equal(result.text, "Ordered 10 pears.");
    const [searchStep, executeStep] = result.steps;
    const found = searchStep!.toolResults[0]!.output as { matches: { tool: string }[]; types: string };
    assert.equal(found.matches[0]!.tool, "shop.order");
    assert.match(found.types, /order\(input: ShopOrderInput\): Promise<unknown>;/);
    const ran = executeStep!.toolResults[0]!.output as { result: unknown; metrics: { toolCalls: number } };
    assert.deepEqual(ran.result, [{ ordered: 10, product: "pears" }]);
    assert.equal(ran.metrics.toolCalls, 3);
    // What the model was offered: the two tools, the API inline in execute's description.
    const offered = model.doGenerateCalls[0]!.tools!.map((t) => t.name);
    assert.deepEqual(offered, ["search", "execute"]);
    assert.match((model.doGenerateCalls[0]!.tools![1] as { description: string }).description, /declare const shop/);
  });

  test("@cloudflare/codemode: createCodeTool with a MayflyExecutor runs a scripted program on Node", async () => {
    installCloudflareWorkersShim();
    const { createCodeTool } = await import("@cloudflare/codemode/ai");
    const executor = new MayflyExecutor({ loader: ctx.loader, limits: { cpuMs: 200 } });
    const codemode = createCodeTool({
      tools: {
        getWeather: tool({ description: "Weather in a city", inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => ({ city, celsius: city === "Oslo" ? -3 : 18 }) }),
      },
      executor,
    });
    const model = new MockLanguageModelV4({
      doGenerate: [
        call("c1", "codemode", { code: "async () => { const a = await codemode.getWeather({ city: 'Oslo' }); const b = await codemode.getWeather({ city: 'Rome' }); console.log('got two'); return b.celsius - a.celsius; }" }),
        call("c2", "codemode", { code: "async () => { while (true) {} }" }),
        say("Rome is 21 degrees warmer."),
      ],
    });
    const result = await generateText({ model, tools: { codemode }, stopWhen: stepCountIs(5), prompt: "How much warmer is Rome than Oslo?" });
    assert.equal(result.text, "Rome is 21 degrees warmer.");
    assert.deepEqual(result.steps[0]!.toolResults[0]!.output, { result: 21, logs: ["got two"] });
    // The package turns an executor error into a tool error; mayfly's CPU limit is what ended the loop.
    const loop = result.steps[1]!.content.find((c) => c.type === "tool-error") as { error: Error } | undefined;
    assert.match(String(loop?.error), /CpuTimeLimitError/);
    // Called directly, as the package does: an unknown function is a catchable error, a throw comes back in error.
    const bad = await executor.execute("async () => { try { await codemode.nope() } catch (e) { return e.name } }", [{ name: "codemode", fns: { a: async () => 1 } }]);
    assert.equal(bad.result, "ToolNotFoundError");
    const thrown = await executor.execute("async () => { throw new Error('boom') }", { a: async () => 1 });
    assert.deepEqual(thrown, { result: undefined, error: "Error: boom", logs: [] });
  });
});
