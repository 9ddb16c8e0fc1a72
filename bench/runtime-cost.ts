// What the in-isolate runtime costs per fresh isolate, by technique. Run in its own process because
// isolated-vm needs --no-node-snapshot:  node --no-node-snapshot bench/runtime-cost.ts [--n 200]
// Prints one JSON line: CPU ms per isolate (create + dispose, single thread) for each technique.
import ivm from "isolated-vm";
import { parseArgs } from "node:util";
import { buildRuntimeScript } from "../src/runtime/index.ts";
import { EvaluatedImage, SnapshotImage, type RuntimeImage } from "../src/engine/executor/runtime-image.ts";

const { values } = parseArgs({ options: { n: { type: "string", default: "100" } } });
const N = Number(values.n);
const code = buildRuntimeScript();
const ok = new ivm.Callback(() => true);
const hooks = { log: ok, reserve: ok, call: ok, start: ok, onCatastrophe: () => {} };

type Make = () => ivm.Isolate;
const bare: Make = () => {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  isolate.createContextSync();
  return isolate;
};
const fromImage = (image: RuntimeImage): Make => () => image.create(128, hooks).isolate;

function msPerIsolate(make: Make): number {
  for (let i = 0; i < 20; i++) make().dispose();
  const t = performance.now();
  for (let i = 0; i < N; i++) make().dispose();
  return (performance.now() - t) / N;
}

const techniques: Record<string, Make> = {
  "no runtime (bare isolate + context)": bare,
  "runtime evaluated per isolate (code cache)": fromImage(new EvaluatedImage(code)),
  "runtime from V8 snapshot": fromImage(new SnapshotImage(code)),
};
// Rounds interleave the techniques so machine noise hits them alike; the median round is reported.
const rounds: Record<string, number[]> = {};
for (let r = 0; r < 5; r++) for (const [name, make] of Object.entries(techniques)) (rounds[name] ??= []).push(msPerIsolate(make));
const out: Record<string, number> = {};
for (const [name, xs] of Object.entries(rounds)) out[name] = xs.sort((a, b) => a - b)[2]!;
console.log(JSON.stringify({ runtimeBytes: code.length, techniques: out, phases: snapshotPhases() }));

/** Where a snapshot isolate's create + dispose time goes, step by step (median over N isolates). */
function snapshotPhases(): Record<string, number> {
  const image = new SnapshotImage(code);
  const samples: Record<string, number[]> = {};
  for (let i = 0; i < N + 20; i++) {
    let last = performance.now();
    const mark = (phase: string) => {
      const now = performance.now();
      if (i >= 20) (samples[phase] ??= []).push(now - last);
      last = now;
    };
    image.create(128, hooks, true, mark).isolate.dispose();
    mark("dispose");
  }
  return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, xs.sort((a, b) => a - b)[xs.length >> 1]!]));
}
