import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TypeCheckError, WorkerLoader, type WorkerCode } from "../src/index.ts";

const loader = new WorkerLoader({ executors: 1, poolSize: 1 });
after(() => loader.close());

function code(modules: WorkerCode["modules"], extra: Partial<WorkerCode> = {}): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.ts", modules, typecheck: true, ...extra };
}

describe("typecheck: true", () => {
  test("type errors fail the load with TypeCheckError, each as file:line:col", async () => {
    const stub = loader.load(code({
      "main.ts": [
        `import { double } from "./lib/math.ts";`,
        `export default {`,
        `  fetch(request: Request): Response {`,
        `    const n: number = request.url;`,
        `    return new Response(double("2"));`,
        `  },`,
        `} satisfies ExportedHandler;`,
      ].join("\n"),
      "lib/math.ts": `export function double(x: number): string {\n  return x * 2;\n}`,
    }));
    await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => {
      assert.ok(e instanceof TypeCheckError, `${e.name}: ${e.message}`);
      assert.equal(e.name, "TypeCheckError");
      const where = e.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} TS${d.code}`);
      assert.deepEqual(where.sort(), ["lib/math.ts:2:3 TS2322", "main.ts:4:11 TS2322", "main.ts:5:32 TS2345"]);
      assert.match(e.message, /^main\.ts:4:11 TS2322: Type 'string' is not assignable to type 'number'\.$/m);
      assert.match(e.message, /^lib\/math\.ts:2:3 /m);
      return true;
    });
  });

  test("a well-typed worker passes and runs: Web APIs, Workers handler and binding types, cloudflare:workers, non-code modules", async () => {
    const stub = loader.load(code({
      "main.ts": `
        import { WorkerEntrypoint } from "cloudflare:workers";
        import greeting from "./greeting.txt";
        import { label } from "./lib/label.js";
        interface Env { NAME: string; CACHE?: KVNamespace; DB?: D1Database; FILES?: R2Bucket; OTHER?: Fetcher }
        export default {
          async fetch(request, env, ctx) {
            ctx.waitUntil(Promise.resolve());
            const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(env.NAME));
            const url = new URL(request.url);
            const headers = new Headers({ "x-a": "1" });
            for (const [k, v] of headers) url.searchParams.set(k, v);
            const cached: string | null = env.CACHE ? await env.CACHE.get("k") : null;
            return Response.json({ text: label(greeting + env.NAME), bytes: digest.byteLength, search: url.search, cached });
          },
        } satisfies ExportedHandler<Env>;
        export class Maths extends WorkerEntrypoint<Env> {
          add(a: number, b: number): number { return a + b + this.env.NAME.length; }
        }`,
      "lib/label.ts": `export const label = (s: string): string => "[" + s + "]";`,
      "greeting.txt": { text: "hi " },
    }, { env: { NAME: "ada" } }));
    const res = await stub.getEntrypoint().fetch("http://w/");
    assert.deepEqual(await res.json(), { text: "[hi ada]", bytes: 32, search: "?x-a=1", cached: null });
    assert.equal(await stub.getEntrypoint<{ add(a: number, b: number): number }>("Maths").add(1, 2), 6);
  });

  test("the compiler reads no host file: an import of a host path is not found, and its content is not in the error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mayfly-tc-"));
    try {
      writeFileSync(join(dir, "secret.ts"), `export const key = "s3cret-value" as const;`);
      const stub = loader.load(code({ "main.ts": `import { key } from ${JSON.stringify(join(dir, "secret.ts"))};\nconst n: number = key;\nexport default {};` }));
      await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => {
        assert.ok(e instanceof TypeCheckError, e.message);
        assert.match(e.message, /main\.ts:1:21 TS2307: Cannot find module/);
        assert.doesNotMatch(e.message, /s3cret-value/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("without typecheck, type errors are only stripped, as before", async () => {
    const stub = loader.load(code({ "main.ts": `export default { fetch() { const n: number = "x" as any as string as unknown as number; const s: string = 1 as unknown as string; return new Response(String(n) + s) } };` }, { typecheck: false }));
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/")).text(), "x1");
    const bad = loader.load(code({ "main.ts": `const n: number = "x"; export default { fetch() { return new Response(n) } };` }, { typecheck: false }));
    assert.equal(await (await bad.getEntrypoint().fetch("http://w/")).text(), "x");
  });

  test("a check past typecheckTimeoutMs is ended (in its own thread) and fails the load; the next check starts afresh", async () => {
    const hasty = new WorkerLoader({ executors: 1, poolSize: 1, typecheckTimeoutMs: 1 });
    try {
      const stub = hasty.load(code({ "main.ts": `export default { fetch() { return new Response("x") } };` }));
      await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => e instanceof TypeCheckError && /did not finish within 1 ms/.test(e.message));
    } finally {
      await hasty.close();
    }
    const stub = loader.load(code({ "main.ts": `export default { fetch() { return new Response("checked") } } satisfies ExportedHandler;` }));
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/")).text(), "checked");
  });
});
