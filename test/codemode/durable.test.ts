import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { CodeMode, execute, functionTools, RunNotFoundError, RunStateError, ToolSourceError, type JournalOptions } from "../../src/index.ts";
import { useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dir = useTempDir("mayfly-durable-");

/** A shop whose every tool counts the times the host really ran it. */
function shop() {
  const ran = { stock: 0, order: 0, refund: 0, note: 0 };
  const orders: unknown[] = [];
  const tools = [
    ...functionTools("shop", {
      stock: { inputSchema: z.object({ product: z.string() }), execute: ({ product }: { product: string }) => (ran.stock++, product === "pears" ? 0 : 3) },
      order: {
        description: "Order units of a product (a person approves each order)",
        inputSchema: z.object({ product: z.string(), units: z.number().int().positive() }),
        requiresApproval: true,
        execute: (o: { product: string; units: number }) => (ran.order++, orders.push(o), { orderId: `o-${orders.length}`, ...o }),
      },
      refund: { inputSchema: z.object({ orderId: z.string() }), requiresApproval: true, execute: ({ orderId }: { orderId: string }) => (ran.refund++, { refunded: orderId }) },
      note: { inputSchema: z.object({ text: z.string() }), execute: ({ text }: { text: string }) => (ran.note++, text.length) },
      big: { inputSchema: z.object({ size: z.number() }), execute: ({ size }: { size: number }) => "x".repeat(size) },
    }),
  ];
  return { ran, orders, tools };
}

let dirs = 0;
function durable(tools = shop().tools, journal: JournalOptions = {}): CodeMode {
  return new CodeMode({ loader: ctx.loader, tools, limits: { cpuMs: 500 }, journal: { dataDir: join(dir, `j${dirs++}`), ...journal } });
}

describe("Durable Code Mode", () => {
  test("a run pauses at a tool that requires approval, resumes on approve, and calls made before the pause ran once", async () => {
    const s = shop();
    const cm = durable(s.tools);
    const code = `
      const pears = await shop.stock({ product: "pears" });
      await shop.note({ text: "restocking" });
      console.log("ordering");
      const order = await shop.order({ product: "pears", units: 10 });
      const after = await shop.note({ text: "ordered " + order.orderId });
      return { pears, order, after }`;
    const paused = await cm.execute(code);
    assert.equal(paused.status, "paused");
    assert.equal(typeof paused.runId, "string");
    assert.deepEqual(paused.pending, { tool: "shop.order", input: { product: "pears", units: 10 } });
    assert.equal(paused.result, undefined);
    assert.deepEqual(s.ran, { stock: 1, order: 0, refund: 0, note: 1 }, "nothing after the gated call ran, and it did not run");
    assert.deepEqual(cm.runs({ status: "paused" }).map((r) => r.runId), [paused.runId]);

    const done = await cm.approve(paused.runId!);
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.result, { pears: 0, order: { orderId: "o-1", product: "pears", units: 10 }, after: 11 });
    assert.deepEqual(s.ran, { stock: 1, order: 1, refund: 0, note: 2 }, "the calls before the pause were answered from the journal");
    assert.deepEqual(done.logs, ["ordering"], "the replayed code logs again");
    assert.equal(done.metrics.replayed, 2);

    const record = cm.journal(paused.runId!)!;
    assert.equal(record.status, "completed");
    assert.equal(record.attempts, 2);
    assert.deepEqual(record.result, done.result);
    assert.deepEqual(record.entries.map((e) => [e.step, e.name, e.status, e.attempt]), [
      [0, "shop.stock", "ok", 1], [1, "shop.note", "ok", 1], [2, "shop.order", "ok", 2], [3, "shop.note", "ok", 2],
    ]);
    const order = record.entries[2]!;
    assert.deepEqual(order.input, { product: "pears", units: 10 });
    assert.equal(order.approval?.decision, "approved");
    assert.ok(order.endedAt! >= order.approval!.decidedAt && order.durationMs! >= 0);
    // A finished run cannot be approved again.
    await assert.rejects(cm.approve(paused.runId!), (e: Error) => e instanceof RunStateError && /is completed/.test(e.message));
    await assert.rejects(cm.approve("no-such-run"), RunNotFoundError);
    cm.close();
  });

  test("several approvals: each gated call pauses again; the earlier approved call is not repeated", async () => {
    const s = shop();
    const cm = durable(s.tools);
    const first = await cm.execute(`
      const a = await shop.order({ product: "apples", units: 1 });
      const b = await shop.order({ product: "pears", units: 2 });
      const r = await shop.refund({ orderId: a.orderId });
      return [a.orderId, b.orderId, r.refunded]`);
    assert.deepEqual(first.pending, { tool: "shop.order", input: { product: "apples", units: 1 } });
    const second = await cm.approve(first.runId!);
    assert.equal(second.status, "paused");
    assert.deepEqual(second.pending, { tool: "shop.order", input: { product: "pears", units: 2 } });
    const third = await cm.approve(first.runId!);
    assert.deepEqual(third.pending, { tool: "shop.refund", input: { orderId: "o-1" } });
    const done = await cm.approve(first.runId!);
    assert.deepEqual(done.result, ["o-1", "o-2", "o-1"]);
    assert.deepEqual(s.orders, [{ product: "apples", units: 1 }, { product: "pears", units: 2 }]);
    assert.deepEqual([s.ran.order, s.ran.refund], [2, 1]);
    assert.equal(cm.journal(first.runId!)!.attempts, 4);
    cm.close();
  });

  test("reject: the waiting call throws ToolRejectedError with the reason inside the code, which may catch it", async () => {
    const s = shop();
    const cm = durable(s.tools);
    const caught = await cm.execute(`
      try { await shop.order({ product: "pears", units: 500 }); return "ordered" }
      catch (e) { await shop.note({ text: "declined" }); return { name: e.name, message: e.message } }`);
    const out = await cm.reject(caught.runId!, "500 pears is too many");
    assert.equal(out.status, "completed");
    assert.deepEqual(out.result, { name: "ToolRejectedError", message: "shop.order was rejected: 500 pears is too many" });
    assert.equal(s.ran.order, 0);
    assert.equal(s.ran.note, 1);
    const entry = cm.journal(caught.runId!)!.entries[0]!;
    assert.deepEqual([entry.status, entry.error?.name, entry.approval?.decision, entry.approval?.reason], ["error", "ToolRejectedError", "rejected", "500 pears is too many"]);

    const uncaught = await cm.execute(`await shop.order({ product: "pears", units: 1 }); return "ordered"`);
    const failed = await cm.reject(uncaught.runId!, "no");
    assert.equal(failed.status, "failed");
    assert.deepEqual(failed.error, { name: "ToolRejectedError", message: "shop.order was rejected: no" });
    assert.equal(cm.journal(uncaught.runId!)!.status, "failed");
    cm.close();
  });

  test("a replay that makes a different call is reported as ReplayDivergenceError, naming the step, expected and actual", async () => {
    const s = shop();
    const cm = durable(s.tools);
    // Math.random() outside a step: the replay sends another input at step 1.
    const paused = await cm.execute(`
      await shop.stock({ product: "apples" });
      await shop.note({ text: "lucky " + Math.random() });
      await shop.order({ product: "apples", units: 1 });
      return "done"`);
    assert.equal(paused.status, "paused");
    const out = await cm.approve(paused.runId!);
    assert.equal(out.status, "failed");
    assert.equal(out.error?.name, "ReplayDivergenceError");
    assert.match(out.error!.message, /diverged at step 1: expected shop\.note\(\{"text":"lucky 0\.\d+"\}\), got shop\.note\(\{"text":"lucky 0\.\d+"\}\)/);
    assert.equal(s.ran.note, 1, "the divergent call was not made");
    assert.equal(s.ran.order, 0, "nor the approved one after it");
    const record = cm.journal(paused.runId!)!;
    assert.equal(record.status, "failed");
    assert.equal(record.error?.name, "ReplayDivergenceError");

    // The code branches on what the host offers; resumed by a host with another tool set it skips a
    // recorded call and finishes: a divergence too.
    const dataDir = mkdtempSync(join(dir, "branch-"));
    const a = new CodeMode({ loader: ctx.loader, tools: s.tools, journal: { dataDir } });
    const branchy = await a.execute(`
      if (typeof extra === "undefined") await shop.stock({ product: "apples" });
      await shop.order({ product: "apples", units: 1 });
      return "done"`);
    a.close();
    const b = new CodeMode({ loader: ctx.loader, tools: [...s.tools, ...functionTools("extra", { x: { inputSchema: {}, execute: () => 1 } })], journal: { dataDir } });
    const skipped = await b.approve(branchy.runId!);
    assert.equal(skipped.error?.name, "ReplayDivergenceError");
    assert.equal(s.ran.order, 0, "the approved call does not run in a replay that skipped a call before it");
    assert.match(skipped.error!.message, /diverged at step 0: expected shop\.stock\(\{"product":"apples"\}\), got shop\.order\(\{"product":"apples","units":1\}\)/);
    b.close();
    cm.close();
  });

  test("codemode.step() records non-deterministic values so the same code replays deterministically; the clock is recorded too", async () => {
    const s = shop();
    const cm = durable(s.tools);
    const paused = await cm.execute(`
      const started = Date.now();
      const lucky = await codemode.step("lucky", () => Math.random());
      const id = await codemode.step("id", () => crypto.randomUUID());
      await shop.note({ text: "lucky " + lucky });
      const afterNote = Date.now();
      const order = await shop.order({ product: "apples", units: 1 });
      const date = [new Date().getTime() === Date.now(), new Date(0).toISOString(), new Date() instanceof Date, new Date().constructor === Date, typeof Date(), Date.UTC(2020, 0, 1)];
      return { started, lucky, id, afterNote, afterOrder: Date.now(), perf: performance.now(), date }`);
    assert.equal(paused.status, "paused");
    await new Promise((r) => setTimeout(r, 30));
    const out = await cm.approve(paused.runId!);
    assert.equal(out.status, "completed", JSON.stringify(out.error));
    const r = out.result as { started: number; lucky: number; id: string; afterNote: number; afterOrder: number; perf: number };
    const record = cm.journal(paused.runId!)!;
    const [lucky, id, note, order] = record.entries;
    assert.deepEqual([lucky!.kind, lucky!.name, lucky!.result], ["step", "lucky", r.lucky]);
    assert.deepEqual([id!.name, id!.result], ["id", r.id]);
    assert.match(r.id, /^[0-9a-f-]{36}$/);
    assert.equal(note!.input && (note!.input as { text: string }).text, `lucky ${r.lucky}`);
    // The replay saw the recorded clock: the run's start, then each call's recorded time.
    assert.equal(r.started, record.clock);
    assert.equal(r.afterNote, note!.clock);
    assert.equal(r.afterOrder, order!.clock);
    assert.ok(r.afterOrder >= r.afterNote + 30, "the approved call happened after the wait");
    assert.equal(r.perf, r.afterOrder - r.started);
    assert.deepEqual((out.result as { date: unknown }).date, [true, "1970-01-01T00:00:00.000Z", true, true, "string", 1577836800000], "Date still behaves as Date");
    assert.equal(s.ran.note, 1);

    // A step that throws is recorded and rethrown on replay; tools cannot be called inside a step.
    const failing = await cm.execute(`
      let a, b;
      try { await codemode.step("boom", () => { throw new RangeError("once " + Math.random()) }) } catch (e) { a = e.name + ": " + e.message }
      try { await codemode.step("nested", async () => shop.note({ text: "x" })) } catch (e) { b = e.name }
      await shop.order({ product: "x", units: 1 });
      return { a, b }`);
    const failingEntries = cm.journal(failing.runId!)!.entries;
    const done = await cm.approve(failing.runId!);
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.equal((done.result as { a: string }).a, `RangeError: ${failingEntries[0]!.error!.message}`);
    assert.equal((done.result as { b: string }).b, "TypeError");

    // A step still running when a concurrent call paused the run is run again on resume.
    const racing = await cm.execute(`
      return await Promise.all([codemode.step("slow", async () => { await new Promise((r) => setTimeout(r, 20)); return 7 }), shop.order({ product: "y", units: 2 })])`);
    assert.equal(racing.status, "paused");
    assert.equal(cm.journal(racing.runId!)!.entries[0]!.status, "running");
    const raced = await cm.approve(racing.runId!);
    assert.deepEqual(raced.result, [7, { orderId: "o-3", product: "y", units: 2 }]);
    cm.close();
  });

  test("Promise.all over tool calls replays even when results come back in another order", async () => {
    let calls = 0;
    const tools = [
      ...functionTools("svc", {
        slow: { inputSchema: z.object({ ms: z.number() }), execute: async ({ ms }: { ms: number }) => { calls++; await new Promise((r) => setTimeout(r, ms)); return ms; } },
        tag: { inputSchema: z.object({ ms: z.number() }), execute: ({ ms }: { ms: number }) => (calls++, `t${ms}`) },
        approve: { inputSchema: {}, requiresApproval: true, execute: () => "ok" },
      }),
    ];
    const cm = durable(tools);
    const paused = await cm.execute(`
      const tags = await Promise.all([60, 1, 30].map(async (ms) => svc.tag({ ms: await svc.slow({ ms }) })));
      return [tags, await svc.approve()]`);
    assert.equal(paused.status, "paused");
    assert.equal(calls, 6);
    const out = await cm.approve(paused.runId!);
    assert.equal(out.status, "completed", JSON.stringify(out.error));
    assert.deepEqual(out.result, [["t60", "t1", "t30"], "ok"]);
    assert.equal(calls, 6);
    cm.close();
  });

  test("a paused run survives a new CodeMode over the same journal (a host restart)", async () => {
    const dataDir = mkdtempSync(join(dir, "restart-"));
    const before = shop();
    const first = new CodeMode({ loader: ctx.loader, tools: before.tools, journal: { dataDir } });
    const paused = await first.execute(`const n = await shop.stock({ product: "apples" }); const o = await shop.order({ product: "apples", units: n }); return o`);
    assert.equal(paused.status, "paused");
    first.close();

    const after = shop();
    const second = new CodeMode({ loader: ctx.loader, tools: after.tools, journal: { dataDir } });
    assert.deepEqual(second.runs({ status: "paused" }).map((r) => [r.runId, r.pending?.tool]), [[paused.runId, "shop.order"]]);
    const done = await second.approve(paused.runId!);
    assert.deepEqual(done.result, { orderId: "o-1", product: "apples", units: 3 });
    assert.deepEqual([after.ran.stock, after.ran.order], [0, 1], "the new host answered stock from the journal");
    assert.equal(before.ran.order, 0);
    second.close();
  });

  test("a run whose host dies mid-call is marked failed (RunInterruptedError) by the next host, its call left running", async () => {
    const dataDir = mkdtempSync(join(dir, "crash-"));
    const script = join(dataDir, "host.ts");
    const src = new URL("../../src/index.ts", import.meta.url).href;
    writeFileSync(script, `
      import { CodeMode, functionTools, WorkerLoader } from ${JSON.stringify(src)};
      const loader = new WorkerLoader({ executors: 1 });
      const tools = functionTools("sys", { ok: { inputSchema: {}, execute: () => 1 }, crash: { inputSchema: {}, execute: () => process.exit(9) } });
      const cm = new CodeMode({ loader, tools, journal: { dataDir: ${JSON.stringify(dataDir)} } });
      await cm.execute("await sys.ok(); await sys.crash(); return 'unreachable'");`);
    const child = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 30_000 });
    assert.equal(child.status, 9, child.stderr);
    await new Promise((r) => setTimeout(r, 1_100));
    // Staleness is judged by the opener's limits: no attempt of its runs stays silent for 2 × (300 + 200) ms.
    const cm = new CodeMode({ loader: ctx.loader, tools: shop().tools, limits: { wallMs: 300 }, toolTimeoutMs: 200, journal: { dataDir } });
    const [run] = cm.runs();
    assert.equal(run?.status, "failed");
    assert.equal(run?.error?.name, "RunInterruptedError");
    assert.deepEqual(cm.journal(run!.runId)!.entries.map((e) => [e.name, e.status]), [["sys.ok", "ok"], ["sys.crash", "running"]]);
    await assert.rejects(cm.approve(run!.runId), RunStateError);
    cm.close();
  });

  test("retention: runs past maxRuns or idle past maxAgeMs are removed", async () => {
    const cm = durable(shop().tools, { maxRuns: 2 });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await cm.execute(`return ${i}`)).runId!);
    assert.equal(cm.journal(ids[0]!), undefined);
    assert.deepEqual(cm.runs().map((r) => r.runId), [ids[2], ids[1]]);
    cm.close();

    const aging = durable(shop().tools, { maxAgeMs: 200 });
    const old = await aging.execute(`await shop.order({ product: "x", units: 1 })`);
    assert.equal(aging.journal(old.runId!)?.status, "paused");
    await new Promise((r) => setTimeout(r, 300));
    await aging.execute("return 1");
    assert.equal(aging.journal(old.runId!), undefined, "a paused run expires too");
    await assert.rejects(aging.approve(old.runId!), RunNotFoundError);
    aging.close();
  });

  test("a value over the journal's cap is refused with JournalValueTooLargeError, never truncated; calls per run are capped", async () => {
    const s = shop();
    const cm = durable(s.tools, { maxValueBytes: 200 });
    const out = await cm.execute(`
      const seen = [];
      try { await shop.big({ size: 500 }) } catch (e) { seen.push(e.name + ": " + e.message) }
      try { await shop.note({ text: "y".repeat(300) }) } catch (e) { seen.push(e.name) }
      try { await codemode.step("big", () => "z".repeat(300)) } catch (e) { seen.push(e.name) }
      seen.push(await shop.big({ size: 10 }));
      return seen`);
    assert.equal(out.status, "completed", JSON.stringify(out.error));
    const seen = out.result as string[];
    assert.match(seen[0]!, /^JournalValueTooLargeError: The value at step 0 is 502 bytes of JSON, over the journal's cap of 200 bytes; it was not recorded\.$/);
    assert.deepEqual(seen.slice(1), ["JournalValueTooLargeError", "JournalValueTooLargeError", "xxxxxxxxxx"]);
    assert.equal(s.ran.note, 0, "a call whose input is over the cap is not made");
    const entries = cm.journal(out.runId!)!.entries;
    assert.deepEqual(entries.map((e) => e.status), ["error", "error", "error", "ok"]);
    assert.equal(entries[0]!.result, undefined);
    // A run can record only so many calls and steps.
    const capped = durable(s.tools, { maxEntriesPerRun: 3 });
    const many = await capped.execute(`
      const out = [];
      for (let i = 0; i < 5; i++) { try { out.push(await shop.note({ text: "n" + i })) } catch (e) { out.push(e.name) } }
      return out`);
    assert.deepEqual(many.result, [2, 2, 2, "QuotaExceededError", "QuotaExceededError"]);
    assert.equal(capped.journal(many.runId!)!.entries.length, 3);
    capped.close();
    // The code's own result over the cap fails the run.
    const tooBig = await cm.execute(`return "r".repeat(300)`);
    assert.equal(tooBig.status, "failed");
    assert.equal(tooBig.error?.name, "JournalValueTooLargeError");
    cm.close();
  });

  test("approval needs a journal: refused at construction, and by plain execute(); a resume happens once", async () => {
    const s = shop();
    assert.throws(() => new CodeMode({ loader: ctx.loader, tools: s.tools }), (e: Error) => e instanceof ToolSourceError && /shop\.order, shop\.refund require approval/.test(e.message));
    assert.throws(() => durable(functionTools("codemode", { x: { inputSchema: {}, execute: () => 1 } })), /keeps the namespace `codemode`/);
    assert.throws(() => durable(s.tools, { maxRuns: 0 }), /maxRuns/);
    const plain = await execute(`try { await shop.order({ product: "a", units: 1 }) } catch (e) { return e.name }`, { loader: ctx.loader, tools: s.tools });
    assert.equal(plain.result, "ToolRejectedError");
    assert.equal(s.ran.order, 0);

    const cm = durable(s.tools);
    const paused = await cm.execute(`return await shop.order({ product: "a", units: 1 })`);
    const both = await Promise.allSettled([cm.approve(paused.runId!), cm.approve(paused.runId!)]);
    assert.equal(both.filter((r) => r.status === "fulfilled").length, 1);
    assert.ok(both.some((r) => r.status === "rejected" && r.reason instanceof RunStateError));
    assert.equal(s.ran.order, 1);
    // The model is told which operations wait for a person, and about codemode.step().
    const d = await cm.describe();
    assert.match(d.execute, /need a person's approval: shop\.order, shop\.refund/);
    assert.match(d.execute, /codemode\.step\(name, \(\) => value\)/);
    assert.match(await cm.types(), /\* Order units of a product \(a person approves each order\)\n {3}\* Requires a person's approval: the run pauses at this call until approved or rejected\.\n {3}\*\/\n {2}order\(/);
    cm.close();
  });
});
