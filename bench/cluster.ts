// Cluster mode (issue 15) on one machine:  node bench/cluster.ts [--seconds 3] [--connections 16] [--n 100]
//
// Three `mayfly serve --cluster` processes and a throwaway PostgreSQL (Debian's, test/postgres.ts),
// with HAProxy (round robin) in front when /usr/sbin/haproxy exists, else the load split by the client.
//   1. Fresh-isolate throughput over HTTP (autocannon): one host alone vs the three behind the balancer.
//      On one machine the hosts share its cores: this shows the cluster's overhead, not its scaling.
//   2. KV and D1 read-after-write across hosts: PUT through host 1, GET through host 2 at once.
//   3. Actor call p50: landing on the owner vs landing on another host (forwarded), read and write.
//   4. Time to serve an actor again after its owner is kill -9ed (the lease time, --lease-ms).
// Part of `npm run bench` (bench/run.ts runs it as a child process); prints a markdown table.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { findPostgres, freePort, TestPostgres } from "../test/postgres.ts";
import { deploy, makeConfigDir, spawnHost, type ChildHost } from "../test/cluster/helpers.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({ options: {
  seconds: { type: "string", default: "3" }, connections: { type: "string", default: "16" },
  n: { type: "string", default: "100" }, "lease-ms": { type: "string", default: "2000" }, executors: { type: "string", default: "1" },
} });
const seconds = Number(args.seconds);
const connections = Number(args.connections);
const n = Number(args.n);
const leaseMs = Number(args["lease-ms"]);
const executors = Number(args.executors);
const HAPROXY = "/usr/sbin/haproxy";

const found = findPostgres();
if (typeof found === "string") {
  console.log(`mayfly cluster (issue 15): skipped (${found})`);
  process.exit(0);
}

const rows: [string, string][] = [];
const postgres = await TestPostgres.start();
const configDir = makeConfigDir();
const hosts: ChildHost[] = [];
let balancer: { url: string; child?: ChildProcess } | undefined;
try {
  const url = await postgres.createDatabase("bench");
  deploy(configDir, url);
  for (const id of ["h1", "h2", "h3"]) hosts.push(await spawnHost({ postgresUrl: url, hostId: id, leaseMs, executors }));
  balancer = await startBalancer(hosts.map((h) => h.url));

  const one = await load([`${hosts[0]!.url}/w/hello/`]);
  const three = await load(balancer.child ? [`${balancer.url}/w/hello/`] : hosts.map((h) => `${h.url}/w/hello/`));
  rows.push(["fresh isolate, one host", `${one.rps.toFixed(0)} req/s (p50 ${one.p50} ms, ${one.errors} errors)`]);
  rows.push([`fresh isolate, three hosts (${balancer.child ? "HAProxy" : "client-side split"})`, `${three.rps.toFixed(0)} req/s (p50 ${three.p50} ms, ${three.errors} errors)`]);

  for (const [label, worker] of [["KV", "kv"], ["D1", "d1"]] as const) {
    const { consistent, p50 } = await readAfterWrite(hosts[0]!.url, hosts[1]!.url, worker);
    rows.push([`${label} write on host 1, read on host 2`, `${consistent}/${n} read the write; p50 ${p50.toFixed(1)} ms for both`]);
  }

  await (await fetch(`${hosts[0]!.url}/w/counter/inc?name=bench`)).text(); // host 1 owns it
  for (const [label, path] of [["read", "read"], ["write", "inc"]] as const) {
    const owner = await timed(n, () => fetch(`${hosts[0]!.url}/w/counter/${path}?name=bench`));
    const other = await timed(n, () => fetch(`${hosts[1]!.url}/w/counter/${path}?name=bench`));
    rows.push([`actor ${label}, on the owner`, `p50 ${percentile(owner, 50).toFixed(1)} ms, p99 ${percentile(owner, 99).toFixed(1)} ms`]);
    rows.push([`actor ${label}, via another host`, `p50 ${percentile(other, 50).toFixed(1)} ms, p99 ${percentile(other, 99).toFixed(1)} ms`]);
  }

  hosts[0]!.child.kill("SIGKILL");
  const killed = performance.now();
  await hosts[0]!.exited;
  for (;;) {
    const res = await fetch(`${hosts[1]!.url}/w/counter/inc?name=bench`).catch(() => undefined);
    if (res?.status === 200) break;
    await res?.text();
  }
  rows.push([`actor serving again after kill -9 of its owner (lease ${leaseMs} ms)`, `${(performance.now() - killed).toFixed(0)} ms`]);
} finally {
  balancer?.child?.kill();
  for (const h of hosts) if (h.child.exitCode === null) h.child.kill("SIGTERM");
  await Promise.all(hosts.map((h) => h.exited));
  await postgres.close();
  rmSync(configDir, { recursive: true, force: true });
}

console.log(`mayfly cluster on one machine (issue 15): 3 hosts × ${executors} executor(s), PostgreSQL, ${seconds} s × ${connections} connections, n=${n}:\n`);
console.log("| measure | value |\n| --- | --- |");
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);

async function load(urls: string[]): Promise<{ rps: number; p50: number; errors: number }> {
  const per = Math.max(1, Math.floor(connections / urls.length));
  await Promise.all(urls.map((url) => autocannon({ url, connections: per, duration: 1 })));
  const rs = await Promise.all(urls.map((url) => autocannon({ url, connections: per, duration: seconds })));
  return { rps: rs.reduce((s, r) => s + r.requests.average, 0), p50: Math.max(...rs.map((r) => r.latency.p50)), errors: rs.reduce((s, r) => s + r.errors + r.timeouts + r.non2xx, 0) };
}

/** PUT through one host, GET the same key through another at once, n times: how many saw the write. */
async function readAfterWrite(writer: string, reader: string, worker: string): Promise<{ consistent: number; p50: number }> {
  let consistent = 0;
  const raw: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await (await fetch(`${writer}/w/${worker}/?k=k${i}`, { method: "PUT", body: `v${i}` })).text();
    const got = await (await fetch(`${reader}/w/${worker}/?k=k${i}`)).text();
    raw.push(performance.now() - t);
    if (got === `v${i}`) consistent++;
  }
  return { consistent, p50: percentile(raw, 50) };
}

async function timed(count: number, call: () => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const res = await call();
    await res.text();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    out.push(performance.now() - t);
  }
  return out;
}

/** HAProxy round robin over the hosts, health-checked on /readyz; none when it is not installed. */
async function startBalancer(urls: string[]): Promise<{ url: string; child?: ChildProcess }> {
  if (!existsSync(HAPROXY)) return { url: "" };
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "mayfly-haproxy-"));
  const cfg = join(dir, "haproxy.cfg");
  writeFileSync(cfg, [
    "global", "  maxconn 4096", "defaults", "  mode http", "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s", "  option http-keep-alive",
    `frontend fe`, `  bind 127.0.0.1:${port}`, "  default_backend hosts",
    "backend hosts", "  balance roundrobin", "  option httpchk", "  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host mayfly",
    ...urls.map((u, i) => `  server h${i + 1} ${new URL(u).host} check inter 1s`),
  ].join("\n") + "\n");
  const child = spawn(HAPROXY, ["-f", cfg, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  child.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/w/hello/`).then((r) => r.ok, () => false);
    if (ok) return { url, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  return { url: "" };
}
