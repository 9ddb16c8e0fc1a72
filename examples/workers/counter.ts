// A durable actor per name: GET /w/counter/<name> increments that name's counter and answers its value.
// Declared in mayfly.config.json as "actors": { "COUNTER": { "className": "Counter" } }.
import { DurableObject, type DurableObjectNamespace, type DurableObjectState } from "cloudflare:workers";

interface Env {
  COUNTER: DurableObjectNamespace<Counter>;
}

export class Counter extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS hits (at INTEGER NOT NULL)");
  }

  /** One more hit: its time in SQL, the running count in KV storage (safe under concurrency: input gates). */
  async increment(): Promise<number> {
    this.ctx.storage.sql.exec("INSERT INTO hits (at) VALUES (?)", Date.now());
    const n = ((await this.ctx.storage.get<number>("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return n;
  }

  hits(): number {
    return this.ctx.storage.sql.exec<{ c: number }>("SELECT count(*) AS c FROM hits").one().c;
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const name = new URL(request.url).pathname.slice(1) || "default";
    const counter = env.COUNTER.getByName(name);
    const value = await counter.increment();
    return Response.json({ name, value, hits: await counter.hits() });
  },
};
