/**
 * The main job for now: load a TypeScript worker into a fresh isolate, send it a request, print the
 * response and what it cost. Run with `npm run demo`.
 */
import { WorkerLoader, type RunReport } from "../src/index.ts";

const reports: RunReport[] = [];
const loader = new WorkerLoader({ onRun: (r) => reports.push(r) });
await loader.ready();

const worker = loader.load({
  compatibilityDate: "2025-06-01",
  mainModule: "main.ts",
  modules: {
    "main.ts": `
      import { WorkerEntrypoint } from "cloudflare:workers";
      import { shout } from "./shout.ts";
      interface Env { GREETING: string }
      export default {
        async fetch(request: Request, env: Env): Promise<Response> {
          const name = request.headers.get("x-name") ?? "world";
          console.log("serving", name);
          return Response.json({ message: shout(env.GREETING + ", " + name) });
        },
      };
      export class Maths extends WorkerEntrypoint<Env> {
        add(a: number, b: number): number { return a + b; }
      }`,
    "shout.ts": `export const shout = (s: string): string => s.toUpperCase() + "!";`,
  },
  env: { GREETING: "hello" },
  limits: { cpuMs: 50, memoryMb: 16 },
});

const t0 = performance.now();
const response = await worker.getEntrypoint().fetch("https://example.com/", { headers: { "x-name": "mayfly" } });
const body = await response.text();
const elapsed = performance.now() - t0;
console.log(`response: ${response.status} ${body}`);
const sum = await worker.getEntrypoint<{ add(a: number, b: number): number }>("Maths").add(2, 3);
console.log(`rpc Maths.add(2, 3) = ${sum}`);

const first = reports[0]!;
console.log(`logs: ${first.logs.map((l) => `[${l.level}] ${l.message}`).join("; ")}`);
console.log(`cost: first request ${elapsed.toFixed(1)} ms end to end (fresh isolate, TypeScript transpiled), guest CPU ${first.cpuMs.toFixed(2)} ms, executor wall ${first.wallMs.toFixed(2)} ms`);

// A fresh isolate per request: the pooled path, measured over 200 requests.
const times: number[] = [];
for (let i = 0; i < 200; i++) {
  const t = performance.now();
  const stub = loader.load({
    compatibilityDate: "2025-06-01",
    mainModule: "main.js",
    modules: { "main.js": `export default { fetch() { return new Response("ok") } }` },
  });
  await (await stub.getEntrypoint().fetch("https://example.com/")).text();
  stub.dispose();
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(`fresh isolate per request (200 runs): p50 ${times[100]!.toFixed(2)} ms, p99 ${times[197]!.toFixed(2)} ms`);
await loader.close();
