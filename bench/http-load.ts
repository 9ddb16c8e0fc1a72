// Fresh isolate per request over HTTP, loaded with autocannon (a maintained HTTP load generator):
//   mayfly:  `mayfly serve` (a subprocess, as users run it) with one named worker at /w/bench/,
//            which gets a fresh isolate for every request;
//   workerd: GET /load on the workerd peer (LOADER.load() + one fetch per request).
// Both sides run the same worker code and are loaded with the same connections and duration, one
// after the other, from this process.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { startWorkerdPeer } from "./peers/workerd.ts";

export interface HttpLoad {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
}

const CLI = fileURLToPath(new URL("../src/cli/index.ts", import.meta.url));

export const WORKER_SRC =
  'export default { async fetch(req, env) { return new Response(JSON.stringify({ hello: "world", url: req.url })) } }';

async function load(url: string, connections: number, seconds: number): Promise<HttpLoad> {
  // A short warm-up, then the measured run.
  await autocannon({ url, connections, duration: 1 });
  const r = await autocannon({ url, connections, duration: seconds });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

/** `mayfly serve --config` with the bench worker; resolves with its URL once it prints it. */
async function startMayflyServer(dir: string, executors: number): Promise<{ url: string; child: ChildProcess }> {
  await writeFile(join(dir, "bench.js"), WORKER_SRC);
  await writeFile(join(dir, "mayfly.config.json"), JSON.stringify({ workers: { bench: { main: "bench.js" } } }));
  const child = spawn(process.execPath, [CLI, "serve", "--config", join(dir, "mayfly.config.json"), "--port", "0", "--executors", String(executors)], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      const m = /listening on (http:\S+)/.exec(String(d));
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`mayfly serve exited (${code})`)));
  });
  return { url, child };
}

export async function benchHttpLoad(opts: { connections: number; seconds: number; executors: number }): Promise<{ mayfly: HttpLoad; workerd: HttpLoad }> {
  const dir = await mkdtemp(join(tmpdir(), "mayfly-http-bench-"));
  let mayfly: HttpLoad;
  const server = await startMayflyServer(dir, opts.executors);
  try {
    const body = await (await fetch(`${server.url}/w/bench/`)).text();
    if (!body.includes('"hello":"world"')) throw new Error(`mayfly /w/bench/ answered ${body}`);
    mayfly = await load(`${server.url}/w/bench/`, opts.connections, opts.seconds);
  } finally {
    server.child.kill("SIGTERM");
    await new Promise((r) => server.child.once("exit", r));
    await rm(dir, { recursive: true, force: true });
  }
  const peer = await startWorkerdPeer();
  try {
    return { mayfly, workerd: await load(`${peer.url}/load`, opts.connections, opts.seconds) };
  } finally {
    await peer.close();
  }
}
