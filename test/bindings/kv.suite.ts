/**
 * The KV binding's behaviour, whatever stores it: run against SQLite (kv.test.ts) and PostgreSQL
 * (kv-postgres.test.ts) alike. `make` builds a namespace on the storage under test; names are unique
 * per test, so one database or data directory serves the whole suite.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KvNamespace, KvOptions } from "../../src/index.ts";
import { runHandler, useLoader } from "../helpers.ts";

export type MakeKv = (name: string, options?: Pick<KvOptions, "quota">) => KvNamespace;

export function kvSuite(label: string, make: MakeKv): void {
  describe(`KV binding (Cloudflare Workers KV API) on ${label}`, () => {
    const ctx = useLoader({ executors: 1 });
    const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

    test("put/get as text, json, arrayBuffer and stream; getWithMetadata; delete", async () => {
      const out = await run(`
        await env.KV.put("greeting", "héllo");
        await env.KV.put("conf", JSON.stringify({ a: [1] }), { metadata: { v: 2 } });
        await env.KV.put("bin", new Uint8Array([1, 2, 255]));
        await env.KV.put("streamed", new Response("from a stream").body);
        const r = {
          text: await env.KV.get("greeting"),
          json: await env.KV.get("conf", "json"),
          jsonObj: await env.KV.get("conf", { type: "json" }),
          buf: [...new Uint8Array(await env.KV.get("bin", "arrayBuffer"))],
          stream: await new Response(await env.KV.get("greeting", "stream")).text(),
          streamed: await env.KV.get("streamed"),
          meta: await env.KV.getWithMetadata("conf", "json"),
          none: await env.KV.getWithMetadata("missing"),
          missing: await env.KV.get("missing"),
        };
        await env.KV.delete("greeting");
        r.deleted = await env.KV.get("greeting");
        return Response.json(r);`, { KV: make("basic") });
      assert.deepEqual(out, {
        text: "héllo", json: { a: [1] }, jsonObj: { a: [1] }, buf: [1, 2, 255], stream: "héllo", streamed: "from a stream",
        meta: { value: { a: [1] }, metadata: { v: 2 } }, none: { value: null, metadata: null }, missing: null, deleted: null,
      });
    });

    test("bulk reads: get and getWithMetadata of several keys answer a Map; cacheTtl is accepted", async () => {
      const out = await run(`
        await env.KV.put("a", JSON.stringify({ n: 1 }), { metadata: { m: "a" } });
        await env.KV.put("b", JSON.stringify({ n: 2 }));
        const values = await env.KV.get(["a", "b", "missing"], { type: "json", cacheTtl: 60 });
        const withMeta = await env.KV.getWithMetadata(["a", "missing"], "json");
        let tooMany = null;
        try { await env.KV.get(Array.from({ length: 101 }, (_, i) => "k" + i)) } catch (e) { tooMany = e.name }
        return Response.json({ isMap: values instanceof Map, values: [...values], withMeta: [...withMeta], tooMany });`, { KV: make("bulk") });
      assert.deepEqual(out, {
        isMap: true,
        values: [["a", { n: 1 }], ["b", { n: 2 }], ["missing", null]],
        withMeta: [["a", { value: { n: 1 }, metadata: { m: "a" } }], ["missing", { value: null, metadata: null }]],
        tooMany: "TypeError",
      });
    });

    test("list: lexicographic order, prefix, limit and cursor pagination, metadata and expiration", async () => {
      const out = await run(`
        for (const k of ["user:3", "user:1", "admin:1", "user:2"]) await env.KV.put(k, "x", k === "user:2" ? { metadata: { m: 1 }, expirationTtl: 3600 } : {});
        const first = await env.KV.list({ prefix: "user:", limit: 2 });
        const second = await env.KV.list({ prefix: "user:", limit: 2, cursor: first.cursor });
        const all = await env.KV.list();
        return Response.json({ first, second: second.keys.map((k) => k.name), complete: second.list_complete, all: all.keys.map((k) => k.name) });`,
        { KV: make("listing") });
      assert.deepEqual(out.first.keys.map((k: { name: string }) => k.name), ["user:1", "user:2"]);
      assert.equal(out.first.list_complete, false);
      assert.deepEqual(out.first.keys[1].metadata, { m: 1 });
      assert.ok(out.first.keys[1].expiration > Date.now() / 1000 + 3000);
      assert.deepEqual(out.second, ["user:3"]);
      assert.equal(out.complete, true);
      assert.deepEqual(out.all, ["admin:1", "user:1", "user:2", "user:3"]);
    });

    test("list order is the byte order of the keys' UTF-8, across cursor pages", async () => {
      const ns = make("byte-order");
      const keys = ["a", "B", "Z", "é", "e", "z", "😀", "ab", "a b", "ä", "~", "A", "0", "日本"];
      for (const k of keys) await ns.put(k, k);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await ns.list({ limit: 3, cursor });
        seen.push(...page.keys.map((k) => k.name));
        if (page.list_complete) break;
        cursor = page.cursor;
      }
      assert.deepEqual(seen, [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
      assert.deepEqual((await ns.list({ prefix: "a" })).keys.map((k) => k.name), ["a", "a b", "ab"]);
      await ns.put("😀 smile", "s");
      assert.deepEqual((await ns.list({ prefix: "😀" })).keys.map((k) => k.name), ["😀", "😀 smile"]);
    });

    test("expired keys read as missing and leave list(); a later write purges them", async () => {
      const ns = make("expiry", { quota: { keys: 2 } });
      await ns.put("short", "s", { expirationTtl: 60, metadata: { x: 1 } });
      await ns.put("long", "l", { expiration: Math.floor(Date.now() / 1000) + 7200 });
      assert.equal(await ns.get("short"), "s");
      const real = Date.now;
      Date.now = () => real() + 600_000;
      try {
        assert.equal(await ns.get("short"), null);
        assert.deepEqual(await ns.getWithMetadata("short"), { value: null, metadata: null });
        assert.deepEqual((await ns.list()).keys.map((k) => k.name), ["long"]);
        // The quota counts live keys: the expired one is purged by this write, so it fits.
        await ns.put("third", "t");
      } finally {
        Date.now = real;
      }
      assert.deepEqual((await ns.list()).keys.map((k) => k.name), ["long", "third"]);
    });

    test("invalid keys and expirations are TypeError/RangeError, as on Cloudflare", async () => {
      const out = await run(`
        const r = [];
        for (const f of [() => env.KV.put("", "x"), () => env.KV.put("k", "x", { expirationTtl: 10 }), () => env.KV.get("x".repeat(600))]) {
          try { await f(); r.push("ok") } catch (e) { r.push(e.name) }
        }
        return Response.json(r);`, { KV: make("invalid") });
      assert.deepEqual(out, ["TypeError", "RangeError", "RangeError"]);
    });

    test("quotas: keys and bytes; exceeding one is QuotaExceededError and the write does not happen", async () => {
      const out = await run(`
        const r = [];
        for (const k of ["a", "b", "c"]) { try { await env.KEYS.put(k, "v"); r.push("ok") } catch (e) { r.push(e.name) } }
        await env.KEYS.put("a", "updated");
        try { await env.BYTES.put("big", "x".repeat(200)); r.push("ok") } catch (e) { r.push(e.name) }
        r.push((await env.KEYS.list()).keys.length, await env.KEYS.get("a"), await env.BYTES.get("big"));
        return Response.json(r);`, { KEYS: make("quota-keys", { quota: { keys: 2 } }), BYTES: make("quota-bytes", { quota: { bytes: 100 } }) });
      assert.deepEqual(out, ["ok", "ok", "QuotaExceededError", "QuotaExceededError", 2, "updated", null]);
    });

    test("concurrent writes under a key quota: exactly the quota's worth succeed", async () => {
      const ns = make("quota-race", { quota: { keys: 5 } });
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => ns.put(`k${i}`, "v")));
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 5);
      assert.ok(results.every((r) => r.status === "fulfilled" || (r.reason as Error).name === "QuotaExceededError"));
      assert.equal((await ns.list()).keys.length, 5);
    });

    test("namespaces cannot reach each other's data", async () => {
      const out = await run(`
        await env.A.put("k", "in A"); await env.B.put("k", "in B");
        return Response.json([await env.A.get("k"), await env.B.get("k"), (await env.A.list()).keys.length]);`,
        { A: make("../../escape"), B: make("b") });
      assert.deepEqual(out, ["in A", "in B", 1]);
    });
  });
}
