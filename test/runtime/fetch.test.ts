/**
 * The Fetch API inside the isolate (Fetch Standard §5): Headers (§5.1), bodies (§5.2 BodyInit,
 * §5.3 Body mixin), Request (§5.4) and Response (§5.5), driven through the public API: each worker
 * answers with JSON (or a body) that the host checks.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { responseJson, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

/** Guest helpers: `caught(f)` is the name of what f throws (or rejects with), else "no error". */
const PRELUDE = `
const caught = async (f) => { try { await f(); return "no error"; } catch (e) { return e.name; } };
const message = async (f) => { try { await f(); return "no error"; } catch (e) { return e.name + ": " + e.message; } };
`;

/** Runs `body` as a fetch handler (request, env, ctx in scope) and returns the host's Response. */
async function respond(body: string, init?: RequestInit, url = "http://w/"): Promise<Response> {
  const stub = ctx.loader.load(worker(`${PRELUDE} export default { async fetch(request, env, ctx) { ${body} } }`));
  return stub.getEntrypoint().fetch(url, init);
}

async function json(body: string, init?: RequestInit, url?: string): Promise<any> {
  const res = await respond(body, init, url);
  return responseJson(res);
}

describe("Headers (Fetch §5.1)", () => {
  test("names are case-insensitive, values trimmed, appends combined with ', '", async () => {
    const out = await json(`
      const h = new Headers({ "X-A": "  1\\t" });
      h.append("x-a", "2");
      h.append("X-B", "b");
      return Response.json({ a: h.get("X-a"), b: h.get("x-b"), none: h.get("nope"), has: [h.has("X-A"), h.has("c")],
        tag: Object.prototype.toString.call(h) });`);
    assert.deepEqual(out, { a: "1, 2", b: "b", none: null, has: [true, false], tag: "[object Headers]" });
  });

  test("set replaces every value, delete removes them; invalid names and values are TypeErrors", async () => {
    const out = await json(`
      const h = new Headers([["a", "1"], ["b", "2"], ["a", "3"]]);
      h.set("A", "x");
      const afterSet = [...h];
      h.delete("b");
      return Response.json({ afterSet, afterDelete: [...h],
        badName: await caught(() => h.append("a b", "1")),
        emptyName: await caught(() => new Headers({ "": "1" })),
        lf: await caught(() => h.set("a", "x\\ny")),
        nul: await caught(() => h.set("a", "x\\0y")),
        notByteString: await caught(() => h.set("a", "€")),
        badPair: await caught(() => new Headers([["a", "1", "2"]])),
        notObject: await caught(() => new Headers(5)),
        missingArg: await caught(() => h.append("a")),
        latin1: (h.set("l", "é"), h.get("l")) });`);
    assert.deepEqual(out, {
      afterSet: [["a", "x"], ["b", "2"]], afterDelete: [["a", "x"]],
      badName: "TypeError", emptyName: "TypeError", lf: "TypeError", nul: "TypeError", notByteString: "TypeError",
      badPair: "TypeError", notObject: "TypeError", missingArg: "TypeError", latin1: "é",
    });
  });

  test("iteration is sorted and combined, with each set-cookie separate; getSetCookie keeps them apart", async () => {
    const out = await json(`
      const h = new Headers([["b", "1"], ["Set-Cookie", "c=1"], ["a", "2"], ["set-cookie", "d=2"], ["A", "3"]]);
      const seen = []; h.forEach((v, k, self) => seen.push([k, v, self === h]));
      return Response.json({ entries: [...h], keys: [...h.keys()], values: [...h.values()], seen,
        cookies: h.getSetCookie(), joined: h.get("set-cookie"), copy: [...new Headers(h)] });`);
    const entries = [["a", "2, 3"], ["b", "1"], ["set-cookie", "c=1"], ["set-cookie", "d=2"]];
    assert.deepEqual(out, {
      entries, keys: entries.map(([k]) => k), values: entries.map(([, v]) => v),
      seen: entries.map(([k, v]) => [k, v, true]), cookies: ["c=1", "d=2"], joined: "c=1, d=2", copy: entries,
    });
  });

  test("the iterator sees changes made while iterating (Web IDL pair iterator)", async () => {
    const out = await json(`
      const h = new Headers({ a: "1", c: "3" });
      const seen = [];
      for (const [k] of h) { seen.push(k); if (k === "a") h.append("b", "2"); }
      return Response.json(seen);`);
    assert.deepEqual(out, ["a", "b", "c"]);
  });

  test("an incoming request's headers are immutable (as on Workers); a copy is mutable", async () => {
    const out = await json(`
      const copy = new Headers(request.headers); copy.set("x-new", "1");
      const clone = request.clone();
      return Response.json({ set: await message(() => request.headers.set("x", "1")),
        del: await caught(() => request.headers.delete("x-in")), x: request.headers.get("x-in"),
        copy: copy.get("x-new"), clone: await caught(() => clone.headers.set("x", "1")) });`, { headers: { "x-in": "v" } });
    assert.deepEqual(out, { set: "TypeError: Can't modify immutable headers.", del: "TypeError", x: "v", copy: "1", clone: "TypeError" });
  });
});

describe("Request (Fetch §5.4)", () => {
  test("input: an absolute URL string or URL object (parsed when URL exists), or another Request", async () => {
    const out = await json(`
      const hasURL = typeof URL === "function";
      const a = new Request("http://x/a b?c#f");
      const b = hasURL ? new Request(new URL("http://y/p")) : null;
      const base = new Request("http://z/", { method: "PUT", headers: { "x-h": "1" }, body: "payload", redirect: "manual" });
      const c = new Request(base);
      const d = new Request(new Request("http://z/", { method: "PUT", headers: { "x-h": "1" }, body: "payload" }), { method: "POST", headers: { "x-other": "2" } });
      return Response.json({ hasURL, a: a.url, b: b && b.url, relative: hasURL ? await caught(() => new Request("/relative")) : "TypeError",
        c: [c.url, c.method, c.headers.get("x-h"), c.redirect, await c.text(), base.bodyUsed],
        d: [d.method, d.headers.get("x-h"), d.headers.get("x-other"), await d.text()],
        none: await caught(() => new Request()) });`);
    if (out.hasURL) {
      assert.equal(out.a, "http://x/a%20b?c#f");
      assert.equal(out.b, "http://y/p");
    } else assert.equal(out.a, "http://x/a b?c#f");
    assert.equal(out.relative, "TypeError");
    assert.deepEqual(out.c, ["http://z/", "PUT", "1", "manual", "payload", true]);
    assert.deepEqual(out.d, ["POST", null, "2", "payload"]);
    assert.equal(out.none, "TypeError");
  });

  test("methods are validated and uppercased; CONNECT, TRACE and TRACK are forbidden (§2.2.1)", async () => {
    const out = await json(`
      const m = (method) => { try { return new Request("http://x/", { method }).method } catch (e) { return e.name } };
      return Response.json(["get", "post", "Delete", "patch", "options", "CONNECT", "trace", "Track", "a b", "", "GET\\n"].map(m));`);
    assert.deepEqual(out, ["GET", "POST", "DELETE", "PATCH", "OPTIONS", "TypeError", "TypeError", "TypeError", "TypeError", "TypeError", "TypeError"]);
  });

  test("a GET or HEAD request cannot have a body, given or inherited (§5.4 step 34)", async () => {
    const out = await json(`
      const post = new Request("http://x/", { method: "POST", body: "x" });
      return Response.json({
        get: await caught(() => new Request("http://x/", { body: "x" })),
        head: await caught(() => new Request("http://x/", { method: "HEAD", body: new Uint8Array(1) })),
        nullBody: await caught(() => new Request("http://x/", { body: null })),
        inherited: await caught(() => new Request(post, { method: "GET" })) });`);
    assert.deepEqual(out, { get: "TypeError", head: "TypeError", nullBody: "no error", inherited: "TypeError" });
  });

  test("members: redirect, signal, cf, duplex, headers, bodyUsed; invalid init members are TypeErrors", async () => {
    const out = await json(`
      const r = new Request("http://x/", { method: "POST", body: "b" });
      const withCf = new Request("http://x/", { cf: { cacheTtl: 5 } });
      const hasSignal = typeof AbortSignal === "function";
      let followed = null;
      if (hasSignal) {
        const ac = new AbortController();
        const s = new Request("http://x/", { signal: ac.signal });
        const copy = new Request(s);
        ac.abort("why");
        followed = [s.signal.aborted, s.signal.reason, copy.signal.aborted, s.signal !== ac.signal, r.signal instanceof AbortSignal, r.signal.aborted];
      }
      const before = r.bodyUsed; await r.text();
      return Response.json({ redirect: r.redirect, cf: r.cf === undefined, withCf: withCf.cf, duplex: r.duplex,
        headers: r.headers instanceof Headers, sameHeaders: r.headers === r.headers, used: [before, r.bodyUsed], hasSignal, followed,
        badRedirect: await caught(() => new Request("http://x/", { redirect: "sometimes" })),
        badSignal: await caught(() => new Request("http://x/", { signal: {} })),
        badDuplex: await caught(() => new Request("http://x/", { duplex: "full" })),
        badInit: await caught(() => new Request("http://x/", 5)),
        contentType: r.headers.get("content-type") });`);
    assert.equal(out.redirect, "follow");
    assert.equal(out.cf, true);
    assert.deepEqual(out.withCf, { cacheTtl: 5 });
    assert.equal(out.duplex, "half");
    assert.equal(out.headers, true);
    assert.equal(out.sameHeaders, true);
    assert.deepEqual(out.used, [false, true]);
    if (out.hasSignal) assert.deepEqual(out.followed, [true, "why", true, true, true, false]);
    assert.equal(out.badRedirect, "TypeError");
    assert.equal(out.badSignal, "TypeError");
    assert.equal(out.badDuplex, "TypeError");
    assert.equal(out.badInit, "TypeError");
    assert.equal(out.contentType, "text/plain;charset=UTF-8");
  });

  test("clone() tees the body; cloning a used request is a TypeError", async () => {
    const out = await json(`
      const body = await request.text();
      const r = new Request("http://x/", { method: "POST", body: "data" });
      const c = r.clone();
      const texts = [await r.text(), await c.text()];
      const s = new Request("http://x/", { method: "POST", body: new Blob(["streamed"]).stream() });
      const sc = s.clone();
      return Response.json({ body, texts, streamed: [await sc.text(), await s.text()], c: [c.method, c.url],
        usedClone: await caught(() => r.clone()), incomingUsed: request.bodyUsed });`, { method: "POST", body: "in" });
    assert.deepEqual(out, { body: "in", texts: ["data", "data"], streamed: ["streamed", "streamed"], c: ["POST", "http://x/"], usedClone: "TypeError", incomingUsed: true });
  });

  test("the incoming request's body is a ReadableStream of its bytes", async () => {
    const out = await json(`
      const body = request.body;
      const reader = body.getReader();
      const chunks = [];
      for (;;) { const { done, value } = await reader.read(); if (done) break; chunks.push(...value); }
      return Response.json({ isStream: body instanceof ReadableStream, same: request.body === body, chunks, used: request.bodyUsed,
        again: await caught(() => request.text()), method: request.method, url: request.url });`,
    { method: "PUT", body: new Uint8Array([1, 2, 255]) }, "http://w/p?q=1");
    assert.deepEqual(out, { isStream: true, same: true, chunks: [1, 2, 255], used: true, again: "TypeError", method: "PUT", url: "http://w/p?q=1" });
  });

  test("a GET request has a null body; reading it gives empty results", async () => {
    const out = await json(`return Response.json({ body: request.body, text: await request.text(), again: await request.text(), used: request.bodyUsed });`);
    assert.deepEqual(out, { body: null, text: "", again: "", used: false });
  });
});

describe("Response (Fetch §5.5)", () => {
  test("defaults: status 200, ok, empty statusText, type default, empty url, not redirected", async () => {
    const out = await json(`
      const r = new Response("x");
      const n = new Response();
      return Response.json({ r: [r.status, r.ok, r.statusText, r.type, r.url, r.redirected, r.headers.get("content-type"), r.webSocket, r.cf],
        n: [n.status, n.body, n.headers.get("content-type")], tag: String(r), names: [Headers.name, Request.name, Response.name],
        custom: (({ status, statusText, ok }) => [status, statusText, ok])(new Response("y", { status: 404, statusText: "Not Here" })) });`);
    assert.deepEqual(out, {
      r: [200, true, "", "default", "", false, "text/plain;charset=UTF-8", null, null], n: [200, null, null],
      tag: "[object Response]", names: ["Headers", "Request", "Response"], custom: [404, "Not Here", false],
    });
  });

  test("status must be 200–599 (RangeError); a null body status has no body (TypeError); statusText is checked", async () => {
    const out = await json(`
      return Response.json({ s199: await caught(() => new Response(null, { status: 199 })), s600: await caught(() => new Response(null, { status: 600 })),
        s0: await caught(() => new Response(null, { status: 0 })),
        s204body: await caught(() => new Response("x", { status: 204 })), s304body: await caught(() => new Response(new Uint8Array(0), { status: 304 })),
        s204: new Response(null, { status: 204 }).status, s205: new Response(undefined, { status: 205 }).status,
        text: await caught(() => new Response(null, { statusText: "a\\nb" })), badHeaders: await caught(() => new Response(null, { headers: { "a b": "1" } })) });`);
    assert.deepEqual(out, { s199: "RangeError", s600: "RangeError", s0: "RangeError", s204body: "TypeError", s304body: "TypeError", s204: 204, s205: 205, text: "TypeError", badHeaders: "TypeError" });
  });

  test("Content-Type from the body init (§5.2 extract a body), unless the headers give one", async () => {
    const out = await json(`
      const ct = (body, headers) => new Response(body, { headers }).headers.get("content-type");
      const fd = new FormData(); fd.append("a", "1");
      return Response.json({ string: ct("s"), blob: ct(new Blob(["b"], { type: "Image/PNG" })), untypedBlob: ct(new Blob(["b"])),
        buffer: ct(new ArrayBuffer(2)), view: ct(new Uint8Array(2)), stream: ct(new ReadableStream()),
        params: typeof URLSearchParams === "function" ? ct(new URLSearchParams("a=1")) : "application/x-www-form-urlencoded;charset=UTF-8",
        form: ct(fd), given: ct("s", { "Content-Type": "text/html" }) });`);
    assert.match(out.form, /^multipart\/form-data; boundary=[-\w]+$/);
    delete out.form;
    assert.deepEqual(out, { string: "text/plain;charset=UTF-8", blob: "image/png", untypedBlob: null, buffer: null, view: null, stream: null,
      params: "application/x-www-form-urlencoded;charset=UTF-8", given: "text/html" });
  });

  test("Response.json: the JSON text, application/json unless given, init honoured; undefined is a TypeError", async () => {
    const res = await respond(`return Response.json({ a: [1, "é"] }, { status: 201, headers: { "x-h": "1" } })`);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("x-h"), "1");
    assert.deepEqual(await res.json(), { a: [1, "é"] });
    const out = await json(`return Response.json({ own: Response.json(1, { headers: { "content-type": "application/vnd.x+json" } }).headers.get("content-type"),
      undef: await caught(() => Response.json(undefined)), fn: await caught(() => Response.json(() => 1)),
      cyclic: await caught(() => { const o = {}; o.o = o; Response.json(o); }), nullStatus: await caught(() => Response.json(1, { status: 204 })) })`);
    assert.deepEqual(out, { own: "application/vnd.x+json", undef: "TypeError", fn: "TypeError", cyclic: "TypeError", nullStatus: "TypeError" });
  });

  test("Response.redirect: Location set, status 302 by default, other statuses checked (RangeError), headers immutable", async () => {
    const out = await json(`
      const r = Response.redirect("http://x/to");
      const p = Response.redirect("http://x/perm", 301);
      return Response.json({ r: [r.status, r.headers.get("location"), r.body, r.type], p: [p.status, p.headers.get("location")],
        immutable: await caught(() => r.headers.set("a", "b")), bad: await caught(() => Response.redirect("http://x/", 200)),
        relative: typeof URL === "function" ? await caught(() => Response.redirect("/rel")) : "TypeError" });`);
    assert.deepEqual(out, { r: [302, "http://x/to", null, "default"], p: [301, "http://x/perm"], immutable: "TypeError", bad: "RangeError", relative: "TypeError" });
    const res = await respond(`return Response.redirect("http://x/next", 307)`);
    assert.equal(res.status, 307);
    assert.equal(res.headers.get("location"), "http://x/next");
  });

  test("Response.error: type error, status 0, immutable headers; a handler may not return it", async () => {
    const out = await json(`
      const e = Response.error();
      return Response.json({ e: [e.type, e.status, e.ok, e.body, e.statusText], immutable: await caught(() => e.headers.append("a", "b")),
        clone: [e.clone().type, e.clone().status] });`);
    assert.deepEqual(out, { e: ["error", 0, false, null, ""], immutable: "TypeError", clone: ["error", 0] });
    await assert.rejects(respond(`return Response.error()`), /must not be an error response/);
  });

  test("clone() tees the body: both read the same bytes; a used body cannot be cloned", async () => {
    const out = await json(`
      const r = new Response("abc");
      const c = r.clone();
      const s = new Response(new Blob(["from a stream"]).stream(), { status: 202, headers: { "x-h": "1" } });
      const sc = s.clone();
      const texts = [await c.text(), await r.text()];
      const streamed = [await s.text(), await sc.text(), sc.status, sc.headers.get("x-h")];
      const viaBody = new Response("tee me"); const body = viaBody.body; const vc = viaBody.clone();
      return Response.json({ texts, streamed, viaBody: [await vc.text(), await viaBody.text(), viaBody.body === body],
        used: await caught(() => r.clone()), usedMessage: await message(() => r.text()) });`);
    assert.deepEqual(out.texts, ["abc", "abc"]);
    assert.deepEqual(out.streamed, ["from a stream", "from a stream", 202, "1"]);
    assert.deepEqual(out.viaBody, ["tee me", "tee me", false]);
    assert.equal(out.used, "TypeError");
    assert.match(out.usedMessage, /^TypeError: Body has already been used/);
  });
});

describe("Body mixin (Fetch §5.3)", () => {
  test("text, json, arrayBuffer, bytes and blob read the body; each can read it once", async () => {
    const out = await json(`
      const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0xc3, 0xa9]);
      const ab = await new Response(bytes).arrayBuffer();
      const u8 = await new Response(bytes).bytes();
      const blob = await new Response("xyz", { headers: { "content-type": "Text/Plain; Charset=UTF-8" } }).blob();
      const r = new Response('{"k":[1]}');
      const j = await r.json();
      return Response.json({ text: await new Response(bytes).text(), ab: [ab instanceof ArrayBuffer, ab.byteLength],
        u8: [u8 instanceof Uint8Array, u8.length], blob: [blob instanceof Blob, blob.size, blob.type, await blob.text()], j,
        used: r.bodyUsed, twice: await message(() => r.text()), badJson: await caught(() => new Response("{").json()),
        copy: await (async () => { const src = new Uint8Array([1]); const resp = new Response(src); src[0] = 9; return [...await resp.bytes()]; })() });`);
    assert.equal(out.text, "hé", "text() decodes UTF-8 and drops a BOM");
    assert.deepEqual(out.ab, [true, 6]);
    assert.deepEqual(out.u8, [true, 6]);
    assert.deepEqual(out.blob, [true, 3, "text/plain;charset=UTF-8", "xyz"]);
    assert.deepEqual(out.j, { k: [1] });
    assert.equal(out.used, true);
    assert.match(out.twice, /^TypeError: Body has already been used/);
    assert.equal(out.badJson, "SyntaxError");
    assert.deepEqual(out.copy, [1], "the body is a copy of the init bytes");
  });

  test("body is a ReadableStream; a locked or disturbed stream cannot be read (TypeError)", async () => {
    const out = await json(`
      const r = new Response("hello");
      const reader = r.body.getReader();
      const first = await reader.read();
      const locked = await caught(() => r.text());
      reader.releaseLock();
      const disturbed = await caught(() => r.text());
      const consumed = new Response("abc"); await consumed.text();
      const rs = new ReadableStream(); rs.getReader();
      return Response.json({ first: [...first.value], locked, disturbed, used: r.bodyUsed,
        afterText: [consumed.body instanceof ReadableStream, consumed.body.locked, consumed.bodyUsed],
        lockedInit: await caught(() => new Response(rs)), nonBytes: await message(() => new Response(new ReadableStream({ start(c) { c.enqueue("str"); c.close(); } })).text()) });`);
    assert.deepEqual(out, {
      first: [104, 101, 108, 108, 111], locked: "TypeError", disturbed: "TypeError", used: true, afterText: [true, true, true],
      lockedInit: "TypeError", nonBytes: "TypeError: This ReadableStream did not return bytes.",
    });
  });

  test("formData() parses application/x-www-form-urlencoded and multipart/form-data; other types are TypeErrors", async () => {
    const out = await json(`
      const url = await new Response("a=1&b=%20x+y&a=%E2%82%AC&&c", { headers: { "content-type": "application/x-www-form-urlencoded;charset=UTF-8" } }).formData();
      const form = new FormData(); form.append("text", "line1\\nline2"); form.append("file", new File(["file body"], "f.txt", { type: "text/x-thing" }));
      form.append("blob", new Blob([new Uint8Array([0, 1, 2])]));
      const back = await new Response(form).formData();
      const file = back.get("file"); const blob = back.get("blob");
      return Response.json({ url: [...url], text: back.get("text"), file: [file instanceof File, file.name, file.type, await file.text()],
        blob: [blob.name, blob.type, [...await blob.bytes()]],
        plain: await message(() => new Response("x").formData()),
        noBoundary: await caught(() => new Response("x", { headers: { "content-type": "multipart/form-data" } }).formData()),
        broken: await caught(() => new Response("--b\\r\\nnot a part", { headers: { "content-type": "multipart/form-data; boundary=b" } }).formData()) });`);
    assert.deepEqual(out.url, [["a", "1"], ["b", " x y"], ["a", "€"], ["c", ""]]);
    assert.equal(out.text, "line1\r\nline2", "string values are sent with CRLF line breaks (HTML §4.10.21.8)");
    assert.deepEqual(out.file, [true, "f.txt", "text/x-thing", "file body"]);
    assert.deepEqual(out.blob, ["blob", "application/octet-stream", [0, 1, 2]]);
    assert.match(out.plain, /^TypeError: Unrecognized Content-Type/);
    assert.equal(out.noBoundary, "TypeError");
    assert.equal(out.broken, "TypeError");
  });

  test("multipart/form-data crosses both ways: the host's FormData parses in the guest, the guest's in the host", async () => {
    const form = new FormData();
    form.append("name", "ada");
    form.append("quote", 'say "hi"\r\nbye');
    form.append("upload", new File([new Uint8Array([1, 2, 3, 250])], "data.bin", { type: "application/octet-stream" }));
    // Serialized by the host's own FormData encoder (a body of known size crosses in one piece).
    const encoded = new Response(form);
    const body = new Uint8Array(await encoded.arrayBuffer());
    const out = await json(`
      const fd = await request.formData();
      const up = fd.get("upload");
      return Response.json({ name: fd.get("name"), quote: fd.get("quote"), upload: [up.name, up.type, [...await up.bytes()]], keys: [...fd.keys()] });`,
    { method: "POST", body, headers: { "content-type": encoded.headers.get("content-type")! } });
    assert.deepEqual(out, { name: "ada", quote: 'say "hi"\r\nbye', upload: ["data.bin", "application/octet-stream", [1, 2, 3, 250]], keys: ["name", "quote", "upload"] });

    const res = await respond(`
      const fd = new FormData();
      fd.append("k", "v"); fd.append("k", "w"); fd.append("we\\"ird", "é");
      fd.append("f", new File(["contents"], "na\\"me.txt", { type: "text/plain" }));
      return new Response(fd);`);
    const back = await res.formData();
    assert.deepEqual(back.getAll("k"), ["v", "w"]);
    assert.equal(back.get('we"ird'), "é", "names have '\"' percent-encoded, and decoded back");
    const f = back.get("f") as File;
    assert.equal(f.name, 'na"me.txt');
    assert.equal(f.type, "text/plain");
    assert.equal(await f.text(), "contents");
  });

  test("a URLSearchParams body is sent urlencoded (when URLSearchParams exists)", async () => {
    const res = await respond(`
      if (typeof URLSearchParams !== "function") return new Response("a=1&b=%C3%A9", { headers: { "content-type": "application/x-www-form-urlencoded;charset=UTF-8" } });
      return new Response(new URLSearchParams({ a: "1", b: "é" }));`);
    assert.equal(res.headers.get("content-type"), "application/x-www-form-urlencoded;charset=UTF-8");
    assert.equal(await res.text(), "a=1&b=%C3%A9");
  });

  test("a Blob, DataView or stream body crosses to the host intact", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch(request) {
      if (request.url.endsWith("/blob")) return new Response(new Blob(["bl", new Uint8Array([111, 98])], { type: "x/y" }));
      if (request.url.endsWith("/dv")) { const b = new Uint8Array([0, 100, 118, 0]); return new Response(new DataView(b.buffer, 1, 2)); }
      return new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array([115, 116])); c.enqueue(new Uint8Array([114, 101, 97, 109])); c.close(); } })); } }`));
    const blob = await stub.getEntrypoint().fetch("http://w/blob");
    assert.equal(blob.headers.get("content-type"), "x/y");
    assert.equal(await blob.text(), "blob");
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/dv")).text(), "dv");
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/stream")).text(), "stream");
  });
});

describe("the issue's 'done when' scenario", () => {
  test("a worker reads a JSON request body and streams its response through an upper-casing TransformStream", async () => {
    const stub = ctx.loader.load(worker(`export default {
      async fetch(request) {
        const { name, items } = await request.json();
        const upper = new TransformStream({
          transform(chunk, controller) { controller.enqueue(chunk.toUpperCase()); },
        });
        const writer = upper.writable.getWriter();
        (async () => {
          await writer.write("hello, " + name + "!\\n");
          for (const item of items) await writer.write("- " + item + "\\n");
          await writer.close();
        })();
        const bytes = upper.readable.pipeThrough(new TransformStream({
          transform(chunk, controller) { controller.enqueue(new TextEncoder().encode(chunk)); },
        }));
        return new Response(bytes, { headers: { "content-type": "text/plain; charset=utf-8" } });
      } }`));
    const res = await stub.getEntrypoint().fetch("http://w/", { method: "POST", body: JSON.stringify({ name: "ada", items: ["tea", "café"] }), headers: { "content-type": "application/json" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await res.text(), "HELLO, ADA!\n- TEA\n- CAFÉ\n");
  });
});
