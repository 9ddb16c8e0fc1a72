/**
 * Cluster tests' scaffolding: one throwaway PostgreSQL, a config directory with the test workers,
 * hosts in this process (fast) or as `mayfly serve --cluster` child processes (for kill -9 and SIGTERM).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, type RunningServer } from "../../src/server/index.ts";

export const CLI = fileURLToPath(new URL("../../src/cli/index.ts", import.meta.url));
export const SECRET = "test-cluster-secret-0123456789";

export const COUNTER_WORKER = `
import { DurableObject } from "cloudflare:workers";
export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)");
  }
  async increment() {
    this.ctx.storage.sql.exec("INSERT INTO hits (at) VALUES (?)", Date.now());
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return n;
  }
  value() {
    return { n: this.ctx.storage.kv?.get?.("n") ?? null, hits: this.ctx.storage.sql.exec("SELECT count(*) AS c FROM hits").one().c };
  }
  async read() {
    return { n: (await this.ctx.storage.get("n")) ?? 0, hits: this.ctx.storage.sql.exec("SELECT count(*) AS c FROM hits").one().c };
  }
  async alarmIn(ms) {
    await this.ctx.storage.setAlarm(Date.now() + ms);
    return await this.ctx.storage.getAlarm();
  }
  async alarm() {
    await this.ctx.storage.put("alarms", ((await this.ctx.storage.get("alarms")) ?? 0) + 1);
  }
  async alarms() {
    return { alarms: (await this.ctx.storage.get("alarms")) ?? 0, pending: await this.ctx.storage.getAlarm() };
  }
  async slow(ms) {
    await new Promise((r) => setTimeout(r, ms));
    return "done";
  }
}
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const stub = env.COUNTER.getByName(url.searchParams.get("name") ?? "c");
    try {
      if (url.pathname === "/inc") return Response.json({ n: await stub.increment() });
      if (url.pathname === "/read") return Response.json(await stub.read());
      if (url.pathname === "/slow") return new Response(await stub.slow(Number(url.searchParams.get("ms") ?? 500)));
      if (url.pathname === "/fetch") return stub.fetch(req);
      if (url.pathname === "/alarm") return Response.json({ at: await stub.alarmIn(Number(url.searchParams.get("ms"))) });
      if (url.pathname === "/alarms") return Response.json(await stub.alarms());
      return new Response("no route", { status: 404 });
    } catch (e) {
      return Response.json({ error: e.name, message: e.message }, { status: 500 });
    }
  },
};
`;

export const HELLO_WORKER = `export default { async fetch(req, env) {
  const url = new URL(req.url);
  if (url.pathname === "/slow") await new Promise((r) => setTimeout(r, Number(url.searchParams.get("ms") ?? 500)));
  return Response.json({ hello: env.WHO, path: url.pathname });
} };`;

export const KV_WORKER = `export default { async fetch(req, env) {
  const url = new URL(req.url);
  if (req.method === "PUT") { await env.STATE.put(url.searchParams.get("k"), await req.text()); return new Response("ok"); }
  return new Response(await env.STATE.get(url.searchParams.get("k")));
} };`;

export const D1_WORKER = `export default { async fetch(req, env) {
  const k = new URL(req.url).searchParams.get("k");
  if (req.method === "PUT") {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)");
    await env.DB.prepare("INSERT INTO kv VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v").bind(k, await req.text()).run();
    return new Response("ok");
  }
  const row = await env.DB.prepare("SELECT v FROM kv WHERE k = ?").bind(k).first();
  return new Response(row ? row.v : "");
} };`;

/** A config directory with the test workers; `deploy` publishes them through the CLI. */
export function makeConfigDir(extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "mayfly-cluster-"));
  mkdirSync(join(dir, "workers"));
  writeFileSync(join(dir, "workers/counter.js"), COUNTER_WORKER);
  writeFileSync(join(dir, "workers/hello.js"), HELLO_WORKER);
  writeFileSync(join(dir, "workers/kv.js"), KV_WORKER);
  writeFileSync(join(dir, "workers/d1.js"), D1_WORKER);
  writeFileSync(join(dir, "mayfly.config.json"), JSON.stringify({
    workers: {
      hello: { main: "workers/hello.js", env: { WHO: "cluster" } },
      counter: { main: "workers/counter.js", actors: { COUNTER: { className: "Counter" } } },
      kv: { main: "workers/kv.js", kv: ["STATE"] },
      d1: { main: "workers/d1.js", sql: ["DB"] },
    },
    ...extra,
  }));
  return dir;
}

export function deploy(configDir: string, postgresUrl: string): string {
  const r = spawnSync(process.execPath, [CLI, "cluster", "deploy", "-c", join(configDir, "mayfly.config.json"), "--postgres-url", postgresUrl], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`deploy failed: ${r.stderr}`);
  return r.stdout;
}

export interface HostOptions { postgresUrl: string; hostId: string; leaseMs?: number; drainMs?: number; executors?: number }

/** A host in this process (its own data directory). */
export async function startHost(o: HostOptions): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), `mayfly-host-${o.hostId}-`));
  const server = await startServer({
    port: 0, playground: false, baseDir: dir, loader: { executors: 1 },
    cluster: { postgresUrl: o.postgresUrl, hostId: o.hostId, secret: SECRET, leaseMs: o.leaseMs ?? 2_000, drainMs: o.drainMs },
  });
  const close = server.close;
  server.close = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return server;
}

export interface ChildHost { url: string; child: ChildProcess; exited: Promise<number | null>; stderr(): string }

/** A host as a `mayfly serve --cluster` child process (kill -9, SIGTERM). */
export async function spawnHost(o: HostOptions): Promise<ChildHost> {
  const dir = mkdtempSync(join(tmpdir(), `mayfly-child-${o.hostId}-`));
  const child = spawn(process.execPath, [CLI, "serve", "--cluster", "-p", "0", "--executors", String(o.executors ?? 1),
    "--host-id", o.hostId, "--lease-ms", String(o.leaseMs ?? 2_000), ...(o.drainMs !== undefined ? ["--drain-ms", String(o.drainMs)] : [])], {
    cwd: dir, env: { ...process.env, MAYFLY_POSTGRES_URL: o.postgresUrl, MAYFLY_CLUSTER_SECRET: SECRET }, stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => { err = (err + d.toString()).slice(-8000); });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => {
    rmSync(dir, { recursive: true, force: true });
    r(code);
  }));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /mayfly listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`host ${o.hostId} exited (${code}): ${err}`)));
  });
  return { url, child, exited, stderr: () => err };
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}
