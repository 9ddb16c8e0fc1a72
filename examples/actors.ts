/**
 * Durable actors, facets and sub-agents from the library: a chat room actor per name that keeps its
 * messages in SQL, hosts an untrusted "moderator" plugin as a facet (its own SQLite, only the data it
 * is given), and delegates summaries to a sub-agent. Run with `node examples/actors.ts`; the data
 * stays in .mayfly/examples-actors, so a second run continues where the first stopped.
 */
import { WorkerLoader, actorNamespace, type WorkerCode } from "../src/index.ts";

const PLUGIN = `
import { DurableObject } from "cloudflare:workers";
export class Moderator extends DurableObject {
  review(text) {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS seen (text TEXT)");
    this.ctx.storage.sql.exec("INSERT INTO seen VALUES (?)", text);
    const banned = this.env.BANNED.some((w) => text.toLowerCase().includes(w));
    return { ok: !banned, reviewed: this.ctx.storage.sql.exec("SELECT count(*) AS n FROM seen").one().n };
  }
}`;

const code: WorkerCode = {
  compatibilityDate: "2025-06-01",
  mainModule: "room.ts",
  modules: {
    "room.ts": `
      import { Agent } from "mayfly:agents";
      const PLUGIN = ${JSON.stringify(PLUGIN)};

      export class Room extends Agent {
        constructor(ctx: any, env: unknown) {
          super(ctx, env);
          ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, who TEXT, text TEXT)");
        }
        async post(who: string, text: string) {
          const moderator = this.ctx.facets.get("moderator", () => ({
            code: { mainModule: "plugin.js", modules: { "plugin.js": PLUGIN } }, className: "Moderator",
            env: { BANNED: ["spam"] },
          }));
          const verdict = await moderator.review(text);
          if (!verdict.ok) return { posted: false, reviewed: verdict.reviewed };
          this.ctx.storage.sql.exec("INSERT INTO messages (who, text) VALUES (?, ?)", who, text);
          return { posted: true, reviewed: verdict.reviewed };
        }
        messages() { return this.ctx.storage.sql.exec("SELECT who, text FROM messages ORDER BY id").toArray(); }
        summary() { return this.subAgent(Summarizer, "summarizer").summarize(); }
      }

      export class Summarizer extends Agent {
        async summarize() {
          const messages = await this.parentAgent().messages();
          const runs = ((await this.ctx.storage.get("runs")) ?? 0) + 1;
          await this.ctx.storage.put("runs", runs);
          return \`\${messages.length} messages from \${new Set(messages.map((m: any) => m.who)).size} people (summary #\${runs})\`;
        }
      }`,
  },
};

const loader = new WorkerLoader({ executors: 1 });
const rooms = actorNamespace({ loader, worker: code, className: "Room", dataDir: ".mayfly/examples-actors" });
try {
  const room = rooms.getByName("lobby");
  console.log(await room.post("ada", "hello"));
  console.log(await room.post("bob", "buy spam now"));
  console.log(await room.post("bob", "hi ada"));
  console.log(await room.messages());
  console.log(await room.summary());
} finally {
  await rooms.close();
  await loader.close();
}
