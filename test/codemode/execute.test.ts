import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { CodeMode, functionTools, ToolSourceError } from "../../src/index.ts";
import { useLoader } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const calls: unknown[] = [];
const tools = () => [
  ...functionTools("maths", {
    add: {
      description: "Adds two numbers.",
      inputSchema: z.object({ a: z.number(), b: z.number() }),
      outputSchema: z.number(),
      execute: ({ a, b }: { a: number; b: number }) => (calls.push([a, b]), a + b),
    },
    fail: { inputSchema: { type: "object", properties: {} }, execute: () => { throw new RangeError("out of range on purpose"); } },
  }),
  ...functionTools("kv", {
    get: {
      inputSchema: { type: "object", properties: { key: { type: "string", minLength: 1 } }, required: ["key"], additionalProperties: false },
      execute: ({ key }: { key: string }) => ({ key, value: key.toUpperCase() }),
    },
  }),
];
const cm = () => new CodeMode({ loader: ctx.loader, tools: tools(), limits: { cpuMs: 200 } });

describe("Code Mode: execute", () => {
  test("the forms a model writes: fenced TypeScript, an async arrow function, a body with return, a last expression", async () => {
    const m = cm();
    const forms = [
      "```ts\nconst r: number = await maths.add({ a: 1, b: 2 });\nr * 10\n```",
      "async () => { const r = await maths.add({ a: 10, b: 20 }); return r }",
      "return await maths.add({ a: 100, b: 200 })",
      "export default async function () { return maths.add({ a: 1000, b: 2000 }) }",
    ];
    const results = [];
    for (const f of forms) results.push((await m.execute(f)).result);
    assert.deepEqual(results, [30, 30, 300, 3000]);
  });

  test("returns result, logs and metrics; tools from two namespaces", async () => {
    const out = await cm().execute(`console.log("start"); console.warn("careful"); const v = await kv.get({ key: "a" }); return [v, await maths.add({ a: 2, b: 3 })]`);
    assert.deepEqual(out.result, [{ key: "a", value: "A" }, 5]);
    assert.deepEqual(out.logs, ["start", "[warn] careful"]);
    assert.equal(out.metrics.toolCalls, 2);
    assert.ok(out.metrics.cpuMs > 0 && out.metrics.wallMs >= out.metrics.cpuMs / 2, JSON.stringify(out.metrics));
  });

  test("tool errors reach the code as exceptions it can catch, by name", async () => {
    const out = await cm().execute(`
      const seen = [];
      try { await maths.add({ a: "one", b: 2 }) } catch (e) { seen.push(e.name + ": " + e.message) }
      try { await kv.get({ key: "" }) } catch (e) { seen.push(e.name + ": " + e.message) }
      try { await maths.fail() } catch (e) { seen.push(e.name + ": " + e.message) }
      try { await maths.subtract({ a: 1, b: 2 }) } catch (e) { seen.push(e.name + ": " + e.message) }
      return seen`);
    assert.deepEqual(out.result, [
      "ToolInputError: Invalid input for maths.add: a: Invalid input: expected number, received string",
      "ToolInputError: Invalid input for kv.get: /key must NOT have fewer than 1 characters",
      "RangeError: out of range on purpose",
      "ToolNotFoundError: maths.subtract is not a tool. Tools in maths: add, fail.",
    ]);
  });

  test("guest faults come back in error, never thrown: an uncaught throw, a syntax error, an uncaught tool error", async () => {
    const m = cm();
    const thrown = await m.execute(`throw new TypeError("bad")`);
    assert.deepEqual(thrown.error, { name: "TypeError", message: "bad" });
    const syntax = await m.execute("const x = {");
    assert.equal(syntax.error?.name, "CodeSyntaxError");
    const uncaught = await m.execute(`await maths.add({})`);
    assert.equal(uncaught.error?.name, "ToolInputError");
  });

  test("an infinite loop ends with CpuTimeLimitError and the next run works", async () => {
    const m = cm();
    const started = performance.now();
    const out = await m.execute("while (true) {}");
    assert.equal(out.error?.name, "CpuTimeLimitError");
    assert.ok(performance.now() - started < 5_000);
    assert.ok(out.metrics.cpuMs >= 200);
    assert.equal((await m.execute("return await maths.add({ a: 1, b: 1 })")).result, 2);
  });

  test("the isolate has only the tools: no fetch, no process, no host objects", async () => {
    const out = await cm().execute(`
      let f; try { await fetch("https://example.com/"); f = "fetched" } catch (e) { f = e.name }
      return { f, process: typeof process, require: typeof require, evalWorks: (() => { try { return eval("1") } catch { return false } })() }`);
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    const r = out.result as Record<string, unknown>;
    assert.notEqual(r.f, "fetched");
    assert.equal(r.process, "undefined");
    assert.equal(r.require, "undefined");
    assert.equal(r.evalWorks, false);
  });

  test("bad tool definitions are refused with ToolSourceError", () => {
    assert.throws(() => functionTools("my-ns", {}), ToolSourceError);
    assert.throws(() => functionTools("class", {}), /"class" is not a usable JavaScript identifier/);
    assert.equal(functionTools("ns", { delete: { inputSchema: {}, execute: () => 1 } })[0]!.name, "delete", "a reserved word is fine as a tool name");
    assert.throws(() => functionTools("ns", { "bad name": { inputSchema: {}, execute: () => 1 } }), /not a JavaScript identifier/);
    assert.throws(() => functionTools("ns", { t: { inputSchema: {} } as never }), /no execute function/);
    assert.throws(() => new CodeMode({ loader: ctx.loader, tools: [...tools(), ...tools()] }), /Two tools are named maths\.add/);
  });

  test("declarations for function tools: zod and JSON Schema inputs, output types, the calling convention", async () => {
    const types = await cm().types();
    assert.match(types, /Call as `await <namespace>\.<tool>\(input\)`/);
    assert.match(types, /declare const maths: \{\n {2}\/\*\*\n {3}\* Adds two numbers\.\n {3}\*\/\n {2}add\(input: MathsAddInput\): Promise<MathsAddOutput>;\n {2}fail\(input\?: MathsFailInput\): Promise<unknown>;\n\};/);
    assert.match(types, /declare const kv: \{\n {2}get\(input: KvGetInput\): Promise<unknown>;/);
    assert.match(types, /interface KvGetInput \{\nkey: string\n\}/);
    assert.match(types, /type MathsAddOutput = number/);
  });
});
