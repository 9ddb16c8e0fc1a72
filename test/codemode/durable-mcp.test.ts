import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ElicitRequestSchema, type ElicitRequest, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { CodeMode, createMcpServer, functionTools } from "../../src/index.ts";
import { useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dir = useTempDir("mayfly-durable-mcp-");

function text(r: Awaited<ReturnType<Client["callTool"]>>): string {
  return (r.content as { type: string; text: string }[]).map((c) => c.text).join("\n");
}

/** A client on an in-memory link to a fresh server for `cm`; `answer`, when given, is the person answering approval forms. */
async function connect(cm: CodeMode, answer?: (req: ElicitRequest) => ElicitResult, mode?: "tools"): Promise<Client> {
  const server = await createMcpServer(cm, { mode });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: "test", version: "1" }, { capabilities: answer ? { elicitation: {} } : {} });
  if (answer) client.setRequestHandler(ElicitRequestSchema, (req) => answer(req));
  await client.connect(clientSide);
  return client;
}

describe("Durable Code Mode over MCP", () => {
  test("a paused run asks the person at the client (elicitation); approvals and a rejection resume it", async () => {
    const sent: string[] = [];
    const tools = functionTools("mail", {
      draft: { inputSchema: z.object({ to: z.string() }), execute: ({ to }: { to: string }) => `Hello ${to}` },
      send: { inputSchema: z.object({ to: z.string(), body: z.string() }), requiresApproval: true, execute: ({ to }: { to: string }) => (sent.push(to), "sent") },
    });
    const cm = new CodeMode({ loader: ctx.loader, tools, journal: { dataDir: dir } });
    const asked: string[] = [];
    const client = await connect(cm, (req): ElicitResult => {
      const message = req.params.message;
      asked.push(message);
      return { action: "accept", content: /"to":"eve"/.test(message) ? { approve: false, reason: "not eve" } : { approve: true } };
    });
    try {
      const { tools: listed } = await client.listTools();
      assert.match(listed.find((t) => t.name === "execute")!.description!, /need a person's approval: mail\.send/);
      const r = await client.callTool({ name: "execute", arguments: { code: `
        const out = [];
        for (const to of ["ann", "eve", "bob"]) {
          try { out.push(await mail.send({ to, body: await mail.draft({ to }) })) } catch (e) { out.push(e.name + ": " + e.message) }
        }
        return out` } });
      assert.equal(r.isError, false, text(r));
      const out = JSON.parse(text(r));
      assert.equal(out.status, "completed");
      assert.deepEqual(out.result, ["sent", "ToolRejectedError: mail.send was rejected: not eve", "sent"]);
      assert.deepEqual(sent, ["ann", "bob"]);
      assert.equal(asked.length, 3);
      assert.match(asked[0]!, /wants to call mail\.send with \{"to":"ann","body":"Hello ann"\}/);
      assert.equal(cm.journal(out.runId)!.attempts, 4);
    } finally {
      await client.close();
      cm.close();
    }
  });

  test("a client that cannot ask its user gets the paused status; the host approves the run itself", async () => {
    let sent = 0;
    const tools = functionTools("mail", { send: { inputSchema: {}, requiresApproval: true, execute: () => ++sent } });
    const cm = new CodeMode({ loader: ctx.loader, tools, journal: { dataDir: dir } });
    const client = await connect(cm);
    try {
      const r = await client.callTool({ name: "execute", arguments: { code: "return await mail.send()" } });
      assert.equal(r.isError, false);
      const out = JSON.parse(text(r));
      assert.equal(out.status, "paused");
      assert.deepEqual(out.pending, { tool: "mail.send" });
      assert.equal(sent, 0);
      assert.deepEqual((await cm.approve(out.runId)).result, 1);
    } finally {
      await client.close();
      cm.close();
    }
  });

  test("per-operation mode: a tool that requires approval is called only once the person approves", async () => {
    let sent = 0;
    const tools = functionTools("mail", { send: { inputSchema: z.object({ to: z.string() }), requiresApproval: true, execute: () => ++sent } });
    const cm = new CodeMode({ loader: ctx.loader, tools, journal: {} });
    const answers: ElicitResult[] = [{ action: "accept", content: { approve: true } }, { action: "decline" }];
    const asking = await connect(cm, () => answers.shift()!, "tools");
    const silent = await connect(cm, undefined, "tools");
    try {
      const ok = await asking.callTool({ name: "mail_send", arguments: { to: "ann" } });
      assert.equal(ok.isError, undefined, text(ok));
      assert.equal(text(ok), "1");
      const declined = await asking.callTool({ name: "mail_send", arguments: { to: "eve" } });
      assert.equal(declined.isError, true);
      assert.equal(text(declined), "ToolRejectedError: mail.send was rejected: declined by the user");
      const refused = await silent.callTool({ name: "mail_send", arguments: { to: "bob" } });
      assert.match(text(refused), /^ToolRejectedError: mail\.send was rejected: it requires a person's approval, and this client cannot ask its user$/);
      assert.equal(sent, 1);
    } finally {
      await asking.close();
      await silent.close();
      cm.close();
    }
  });
});
