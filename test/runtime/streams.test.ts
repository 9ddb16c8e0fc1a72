/**
 * Streams inside the isolate: the WHATWG Streams Standard (§4 ReadableStream, incl. byte streams and
 * BYOB readers, §5 WritableStream, §6 TransformStream, §7 queuing strategies), the Encoding
 * Standard's TextEncoderStream/TextDecoderStream, and the Compression Streams Standard
 * (CompressionStream §5, DecompressionStream §6), cross-checked against node:zlib.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { deflateRawSync, deflateSync, gunzipSync, gzipSync, inflateRawSync, inflateSync } from "node:zlib";

import { responseJson, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

const PRELUDE = `
const caught = async (f) => { try { await f(); return "no error"; } catch (e) { return e && typeof e.name === "string" ? e.name : String(e); } };
const collect = async (stream) => { const out = []; for await (const c of stream) out.push(c); return out; };
const tick = () => new Promise((r) => setTimeout(r, 0));
`;

async function respond(body: string, init?: RequestInit): Promise<Response> {
  const stub = ctx.loader.load(worker(`${PRELUDE} export default { async fetch(request, env, ctx) { ${body} } }`));
  return stub.getEntrypoint().fetch("http://w/", init);
}

async function json(body: string, init?: RequestInit): Promise<any> {
  const res = await respond(body, init);
  return responseJson(res);
}

describe("globals", () => {
  test("every stream class is a global: writable, configurable, not enumerable; loaded on first use", async () => {
    const out = await json(`
      const names = ["ReadableStream", "ReadableStreamDefaultReader", "ReadableStreamBYOBReader", "ReadableStreamBYOBRequest",
        "ReadableByteStreamController", "ReadableStreamDefaultController", "WritableStream", "WritableStreamDefaultWriter",
        "WritableStreamDefaultController", "TransformStream", "TransformStreamDefaultController", "ByteLengthQueuingStrategy",
        "CountQueuingStrategy", "TextEncoderStream", "TextDecoderStream", "CompressionStream", "DecompressionStream"];
      const lazyBefore = typeof Object.getOwnPropertyDescriptor(globalThis, "ReadableStream").get;
      const types = names.map((n) => typeof globalThis[n]);
      const descs = names.map((n) => { const d = Object.getOwnPropertyDescriptor(globalThis, n); return [d.writable, d.configurable, d.enumerable, typeof d.value]; });
      return Response.json({ lazyBefore, types, descs, enumerated: Object.keys(globalThis).filter((k) => names.includes(k)),
        names: names.map((n) => globalThis[n].name) });`);
    assert.equal(out.lazyBefore, "function", "an accessor until first use");
    assert.ok(out.types.every((t: string) => t === "function"), JSON.stringify(out.types));
    assert.ok(out.descs.every((d: unknown[]) => d[0] === true && d[1] === true && d[2] === false && d[3] === "function"), JSON.stringify(out.descs));
    assert.deepEqual(out.enumerated, []);
    assert.deepEqual(out.names, ["ReadableStream", "ReadableStreamDefaultReader", "ReadableStreamBYOBReader", "ReadableStreamBYOBRequest",
      "ReadableByteStreamController", "ReadableStreamDefaultController", "WritableStream", "WritableStreamDefaultWriter",
      "WritableStreamDefaultController", "TransformStream", "TransformStreamDefaultController", "ByteLengthQueuingStrategy",
      "CountQueuingStrategy", "TextEncoderStream", "TextDecoderStream", "CompressionStream", "DecompressionStream"]);
  });

  test("the streams load when first touched indirectly, even if the globals were replaced first", async () => {
    const out = await json(`
      globalThis.ReadableStream = "mine";
      delete globalThis.TransformStream;
      const body = new Response("indirect").body;
      const reader = body.getReader();
      const { value } = await reader.read();
      return Response.json({ mine: globalThis.ReadableStream, gone: typeof TransformStream, read: String.fromCharCode(...value),
        writable: typeof WritableStream, fromBlob: typeof new Blob(["x"]).stream().getReader });`);
    assert.deepEqual(out, { mine: "mine", gone: "undefined", read: "indirect", writable: "function", fromBlob: "function" });
  });
});

describe("ReadableStream (Streams §4)", () => {
  test("a default stream: start/pull with a queue, readers, closed, cancel reaches the source", async () => {
    const out = await json(`
      let pulls = 0; let cancelled = null;
      const rs = new ReadableStream({
        start(c) { c.enqueue("a"); },
        pull(c) { pulls++; if (pulls <= 2) c.enqueue("p" + pulls); else c.close(); },
      });
      const reader = rs.getReader();
      const got = [];
      for (;;) { const { done, value } = await reader.read(); if (done) break; got.push(value); }
      await reader.closed;
      const other = new ReadableStream({ cancel(reason) { cancelled = reason; } });
      await other.cancel("stop");
      const errored = new ReadableStream({ start(c) { c.error(new RangeError("bad")); } });
      return Response.json({ got, pulls, cancelled, locked: rs.locked, isReader: reader instanceof ReadableStreamDefaultReader,
        errored: await caught(() => errored.getReader().read()), twoReaders: await caught(() => { const s = new ReadableStream(); s.getReader(); s.getReader(); }) });`);
    assert.deepEqual(out, { got: ["a", "p1", "p2"], pulls: 3, cancelled: "stop", locked: true, isReader: true, errored: "RangeError", twoReaders: "TypeError" });
  });

  test("a high-water mark bounds the queue: pull stops at desiredSize 0 (CountQueuingStrategy, §7.2)", async () => {
    const out = await json(`
      let pulls = 0; let controller;
      const rs = new ReadableStream({ start(c) { controller = c; }, pull(c) { pulls++; c.enqueue(pulls); } }, new CountQueuingStrategy({ highWaterMark: 3 }));
      await tick(); await tick();
      const queued = pulls; const desired = controller.desiredSize;
      const reader = rs.getReader(); await reader.read();
      await tick();
      const strategy = new CountQueuingStrategy({ highWaterMark: 7 });
      const bytes = new ByteLengthQueuingStrategy({ highWaterMark: 16 });
      return Response.json({ queued, desired, afterRead: pulls, count: [strategy.highWaterMark, strategy.size("anything")],
        bytes: [bytes.highWaterMark, bytes.size(new Uint8Array(5))], missing: await caught(() => new CountQueuingStrategy()) });`);
    assert.deepEqual(out, { queued: 3, desired: 0, afterRead: 4, count: [7, 1], bytes: [16, 5], missing: "TypeError" });
  });

  test("a byte stream with BYOB readers: reads fill the given view; respond() and autoAllocateChunkSize", async () => {
    const out = await json(`
      const rs = new ReadableStream({ type: "bytes", start(c) { c.enqueue(new Uint8Array([1, 2, 3, 4, 5])); c.close(); } });
      const reader = rs.getReader({ mode: "byob" });
      const first = await reader.read(new Uint8Array(2));
      const second = await reader.read(new Uint16Array(1));
      const third = await reader.read(new Uint8Array(8));
      const end = await reader.read(new Uint8Array(1));
      let n = 0;
      const pulled = new ReadableStream({ type: "bytes", pull(c) {
        const req = c.byobRequest; n++;
        if (n > 2) { c.close(); req.respond(0); return; }
        req.view[0] = 10 * n; req.respond(1);
      } });
      const r2 = pulled.getReader({ mode: "byob" });
      const a = await r2.read(new Uint8Array(4)); const b = await r2.read(new Uint8Array(4)); const c = await r2.read(new Uint8Array(4));
      const auto = new ReadableStream({ type: "bytes", autoAllocateChunkSize: 16, pull(c) { c.byobRequest.view[0] = 7; c.byobRequest.respond(1); c.close(); } });
      const viaDefault = await auto.getReader().read();
      return Response.json({ isByob: reader instanceof ReadableStreamBYOBReader, first: [...first.value], second: [second.value.constructor.name, second.value.length],
        third: [...third.value], end: end.done, pulled: [[...a.value], [...b.value], c.done], auto: [...viaDefault.value],
        notBytes: await caught(() => new ReadableStream().getReader({ mode: "byob" })) });`);
    assert.deepEqual(out, {
      isByob: true, first: [1, 2], second: ["Uint16Array", 1], third: [5], end: true,
      pulled: [[10], [20], true], auto: [7], notBytes: "TypeError",
    });
  });

  test("tee(): both branches see every chunk; the source is cancelled only when both branches are", async () => {
    const out = await json(`
      let cancelReason = null;
      const rs = new ReadableStream({ start(c) { c.enqueue("x"); c.enqueue("y"); c.close(); } });
      const [a, b] = rs.tee();
      const both = [await collect(a), await collect(b)];
      const src = new ReadableStream({ pull(c) { c.enqueue(1); }, cancel(r) { cancelReason = r; } });
      const [c1, c2] = src.tee();
      const first = c1.cancel("one"); // settles once both branches are cancelled
      await tick();
      const afterOne = cancelReason;
      await c2.cancel("two");
      await first;
      return Response.json({ both, afterOne, afterBoth: cancelReason, locked: rs.locked });`);
    assert.deepEqual(out, { both: [["x", "y"], ["x", "y"]], afterOne: null, afterBoth: ["one", "two"], locked: true });
  });

  test("async iteration: for await reads every chunk; break cancels the stream unless preventCancel", async () => {
    const out = await json(`
      let cancelled = 0;
      const make = () => new ReadableStream({ pull(c) { c.enqueue(1); }, cancel() { cancelled++; } });
      const all = await collect(new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } }));
      for await (const v of make()) break;
      const keep = make();
      for await (const v of keep.values({ preventCancel: true })) break;
      return Response.json({ all, cancelled, keptLocked: keep.locked, iter: typeof ReadableStream.prototype[Symbol.asyncIterator] });`);
    assert.deepEqual(out, { all: [1, 2], cancelled: 1, keptLocked: false, iter: "function" });
  });

  test("ReadableStream.from: arrays, sync and async iterables", async () => {
    const out = await json(`
      async function* gen() { yield "a"; await tick(); yield "b"; }
      function* sync() { yield 1; yield 2; }
      return Response.json({ array: await collect(ReadableStream.from([1, 2, 3])), async: await collect(ReadableStream.from(gen())),
        sync: await collect(ReadableStream.from(sync())), bad: await caught(() => ReadableStream.from(5)) });`);
    assert.deepEqual(out, { array: [1, 2, 3], async: ["a", "b"], sync: [1, 2], bad: "TypeError" });
  });
});

describe("WritableStream (Streams §5)", () => {
  test("writes reach the sink in order; close and abort reach it too; ready reflects backpressure", async () => {
    const out = await json(`
      const log = [];
      let release;
      const ws = new WritableStream({
        write(chunk) { log.push("w:" + chunk); if (chunk === "slow") return new Promise((r) => { release = r; }); },
        close() { log.push("close"); },
      }, new CountQueuingStrategy({ highWaterMark: 1 }));
      const writer = ws.getWriter();
      const desired0 = writer.desiredSize;
      writer.write("slow");
      writer.write("queued");
      const desired1 = writer.desiredSize;
      let ready = false; writer.ready.then(() => { ready = true; });
      await tick();
      const readyWhileFull = ready;
      release();
      await writer.close();
      let aborted = null;
      const ab = new WritableStream({ abort(reason) { aborted = reason; } });
      await ab.abort("enough");
      const failing = new WritableStream({ write() { throw new TypeError("sink failed"); } });
      const fw = failing.getWriter();
      return Response.json({ log, desired0, desired1, readyWhileFull, readyAfter: ready, aborted,
        failed: await caught(() => fw.write("x")), closed: await caught(() => fw.closed), isWriter: writer instanceof WritableStreamDefaultWriter });`);
    assert.deepEqual(out, {
      log: ["w:slow", "w:queued", "close"], desired0: 1, desired1: -1, readyWhileFull: false, readyAfter: true,
      aborted: "enough", failed: "TypeError", closed: "TypeError", isWriter: true,
    });
  });
});

describe("TransformStream and piping (Streams §6, §4.9)", () => {
  test("transform and flush; pipeThrough chains; errors in transform error both sides", async () => {
    const out = await json(`
      const double = new TransformStream({ transform(chunk, c) { c.enqueue(chunk); c.enqueue(chunk); }, flush(c) { c.enqueue("end"); } });
      const piped = ReadableStream.from(["a", "b"]).pipeThrough(double).pipeThrough(new TransformStream({ transform(c, ctl) { ctl.enqueue(c.toUpperCase()); } }));
      const identity = new TransformStream();
      const w = identity.writable.getWriter(); w.write(1); w.close();
      const broken = new TransformStream({ transform() { throw new SyntaxError("nope"); } });
      const bw = broken.writable.getWriter();
      // The readable side has no room until read from, so the write waits for the read.
      const read = caught(() => broken.readable.getReader().read());
      const write = caught(() => bw.write("x"));
      return Response.json({ piped: await collect(piped), identity: await collect(identity.readable),
        write: await write, read: await read,
        isController: await (async () => { let ok; const t = new TransformStream({ start(c) { ok = c instanceof TransformStreamDefaultController; } }); return ok; })() });`);
    assert.deepEqual(out, { piped: ["A", "A", "B", "B", "END"], identity: [1], write: "SyntaxError", read: "SyntaxError", isController: true });
  });

  test("pipeTo honours backpressure: a slow sink keeps the source from being pulled ahead", async () => {
    const out = await json(`
      let pulled = 0; const written = []; let maxAhead = 0;
      const source = new ReadableStream({ pull(c) { pulled++; if (pulled > 20) c.close(); else c.enqueue(pulled); } }, { highWaterMark: 0 });
      const sink = new WritableStream({ async write(chunk) {
        maxAhead = Math.max(maxAhead, pulled - written.length);
        await new Promise((r) => setTimeout(r, 1));
        written.push(chunk);
      } }, { highWaterMark: 1 });
      await source.pipeTo(sink);
      return Response.json({ written: written.length, pulled, maxAhead });`);
    assert.equal(out.written, 20);
    assert.equal(out.pulled, 21);
    assert.ok(out.maxAhead <= 3, `the source ran at most a few chunks ahead of the sink (was ${out.maxAhead})`);
  });

  test("pipeTo propagates: source error aborts the sink, sink error cancels the source, a signal aborts both", async () => {
    const out = await json(`
      let aborted = null, cancelled = null;
      const erroring = new ReadableStream({ start(c) { c.error("source broke"); } });
      const r1 = await caught(() => erroring.pipeTo(new WritableStream({ abort(r) { aborted = r; } })));
      const failingSink = new WritableStream({ write() { throw "sink broke"; } });
      const r2 = await caught(() => new ReadableStream({ pull(c) { c.enqueue(1); }, cancel(r) { cancelled = r; } }).pipeTo(failingSink));
      let signalResult = "n/a", sinkAbort = null, sourceCancel = null;
      if (typeof AbortController === "function") {
        const ac = new AbortController();
        const slow = new ReadableStream({ pull(c) { return new Promise((r) => setTimeout(() => { c.enqueue(1); r(); }, 5)); }, cancel(r) { sourceCancel = r && r.name; } });
        const p = slow.pipeTo(new WritableStream({ abort(r) { sinkAbort = r && r.name; } }), { signal: ac.signal });
        setTimeout(() => ac.abort(), 12);
        signalResult = await caught(() => p);
      }
      let kept = null;
      const ws = new WritableStream({ close() { kept = "closed"; } });
      await new ReadableStream({ start(c) { c.close(); } }).pipeTo(ws, { preventClose: true });
      return Response.json({ r1, aborted, r2, cancelled, signalResult, sinkAbort, sourceCancel, preventClose: kept, wsLocked: ws.locked });`);
    assert.equal(out.aborted, "source broke");
    assert.equal(out.r1, "source broke", "pipeTo rejects with the source's error");
    assert.equal(out.r2, "sink broke", "pipeTo rejects with the sink's error");
    assert.equal(out.cancelled, "sink broke");
    if (out.signalResult !== "n/a") assert.deepEqual([out.signalResult, out.sinkAbort, out.sourceCancel], ["AbortError", "AbortError", "AbortError"]);
    assert.equal(out.preventClose, null);
    assert.equal(out.wsLocked, false);
  });
});

describe("TextEncoderStream and TextDecoderStream (Encoding §8.3, §8.4)", () => {
  test("UTF-8 across chunk boundaries: split surrogate pairs and split multi-byte sequences", async () => {
    const out = await json(`
      if (typeof TextEncoder === "undefined") return Response.json({ skipped: true });
      const enc = new TextEncoderStream();
      const w = enc.writable.getWriter();
      w.write("a\\uD83D"); w.write("\\uDE00b"); w.write("\\uD800"); w.close();
      const encoded = []; for (const c of await collect(enc.readable)) encoded.push(...c);
      const dec = new TextDecoderStream();
      const dw = dec.writable.getWriter();
      const bytes = new TextEncoder().encode("é€😀");
      for (const b of bytes) dw.write(new Uint8Array([b]));
      dw.close();
      const decoded = (await collect(dec.readable)).join("");
      const fatal = new TextDecoderStream("utf-8", { fatal: true });
      const fw = fatal.writable.getWriter(); fw.write(new Uint8Array([0xff])).catch(() => {}); fw.close().catch(() => {});
      const bom = ReadableStream.from([new Uint8Array([0xef, 0xbb, 0xbf, 0x68])]).pipeThrough(new TextDecoderStream());
      return Response.json({ encoded, decoded, fatal: await caught(() => collect(fatal.readable)), bom: (await collect(bom)).join(""),
        props: [enc.encoding, dec.encoding, dec.fatal, dec.ignoreBOM, fatal.fatal], badLabel: await caught(() => new TextDecoderStream("nope")),
        notBytes: await caught(() => { const d = new TextDecoderStream(); d.writable.getWriter().write("str").catch(() => {}); return collect(d.readable); }) });`);
    if (out.skipped) return;
    assert.deepEqual(out.encoded, [0x61, 0xf0, 0x9f, 0x98, 0x80, 0x62, 0xef, 0xbf, 0xbd]);
    assert.equal(out.decoded, "é€😀");
    assert.equal(out.fatal, "TypeError");
    assert.equal(out.bom, "h");
    assert.deepEqual(out.props, ["utf-8", "utf-8", false, false, true]);
    assert.equal(out.badLabel, "RangeError");
    assert.equal(out.notBytes, "TypeError");
  });
});

/** The guest's compression of a known text, as bytes in the host. */
async function guestCompress(format: string, text: string): Promise<Buffer> {
  const res = await respond(`
    const chunks = ${JSON.stringify(text)}.match(/[\\s\\S]{1,1000}/g);
    return new Response(ReadableStream.from(chunks).pipeThrough(new TextEncoderStream()).pipeThrough(new CompressionStream("${format}")));`);
  return Buffer.from(await res.arrayBuffer());
}

/** The guest's decompression of bytes sent by the host, as text (or the error's name and message). */
async function guestDecompress(format: string, bytes: Uint8Array, chunkSize = 7): Promise<string> {
  const res = await respond(`
    const body = new Uint8Array(await request.arrayBuffer());
    const parts = []; for (let i = 0; i < body.length; i += ${chunkSize}) parts.push(body.slice(i, i + ${chunkSize}));
    try {
      return new Response(await new Response(ReadableStream.from(parts).pipeThrough(new DecompressionStream("${format}"))).text());
    } catch (e) { return new Response("ERROR " + e.name + ": " + e.message); }`, { method: "POST", body: new Uint8Array(bytes) });
  return res.text();
}

describe("IdentityTransformStream and FixedLengthStream (Cloudflare Workers)", () => {
  test("bytes pass through unchanged; non-byte chunks are refused", async () => {
    const out = await json(`
      const { readable, writable } = new IdentityTransformStream();
      const w = writable.getWriter();
      w.write(new Uint8Array([1, 2])); w.write(new Uint16Array([0x0403]).buffer); w.close();
      const chunks = (await collect(readable)).map((c) => [...c]);
      const bad = new IdentityTransformStream();
      bad.readable.pipeTo(new WritableStream()).catch(() => {});
      const refused = await caught(() => bad.writable.getWriter().write("text"));
      return Response.json({ chunks, refused });`);
    assert.deepEqual(out, { chunks: [[1, 2], [3, 4]], refused: "TypeError" });
  });

  test("FixedLengthStream insists on its length: too many bytes fail the write, too few fail close()", async () => {
    const out = await json(`
      const exact = new FixedLengthStream(3);
      const done = new Response(exact.readable).text();
      const w = exact.writable.getWriter(); w.write(new TextEncoder().encode("abc")); w.close();
      const over = new FixedLengthStream(2);
      over.readable.pipeTo(new WritableStream()).catch(() => {});
      const tooMany = await caught(() => over.writable.getWriter().write(new Uint8Array(3)));
      const under = new FixedLengthStream(5);
      under.readable.pipeTo(new WritableStream()).catch(() => {});
      const uw = under.writable.getWriter();
      await uw.write(new Uint8Array(2));
      const tooFew = await caught(() => uw.close());
      return Response.json({ text: await done, tooMany, tooFew, badLength: await caught(() => new FixedLengthStream(-1)) });`);
    assert.deepEqual(out, { text: "abc", tooMany: "TypeError", tooFew: "TypeError", badLength: "TypeError" });
  });
});

describe("CompressionStream and DecompressionStream (Compression Streams §5, §6)", () => {
  const text = "The quick brown fox jumps over the lazy dog. ".repeat(300) + "é€😀 end";
  const formats = [
    { format: "gzip", compress: gzipSync, decompress: gunzipSync },
    { format: "deflate", compress: deflateSync, decompress: inflateSync },
    { format: "deflate-raw", compress: deflateRawSync, decompress: inflateRawSync },
  ];

  for (const { format, compress, decompress } of formats) {
    test(`${format}: a round trip in the guest, and each side reads the other's data (node:zlib)`, async () => {
      const roundTrip = await json(`
        const input = ${JSON.stringify(text)};
        const compressed = new Response(new Blob([input]).stream().pipeThrough(new CompressionStream("${format}")));
        const bytes = new Uint8Array(await compressed.arrayBuffer());
        const back = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("${format}"))).text();
        return Response.json({ same: back === input, smaller: bytes.length < input.length });`);
      assert.deepEqual(roundTrip, { same: true, smaller: true });
      const fromGuest = await guestCompress(format, text);
      assert.equal(decompress(fromGuest).toString("utf8"), text, "node:zlib reads the guest's output");
      assert.equal(await guestDecompress(format, compress(Buffer.from(text))), text, "the guest reads node:zlib's output");
      assert.equal(await guestDecompress(format, compress(Buffer.from(text)), 1), text, "one byte at a time");
      assert.equal(await guestDecompress(format, compress(Buffer.alloc(0))), "");
    });

    test(`${format}: corrupt, truncated or trailing input is a TypeError on the readable side`, async () => {
      const good = compress(Buffer.from(text));
      const corrupt = Buffer.from(good);
      corrupt[Math.floor(corrupt.length / 2)]! ^= 0xff;
      corrupt[corrupt.length - 3]! ^= 0xff;
      for (const [what, bytes] of [
        ["truncated", good.subarray(0, good.length - 3)],
        ["cut in half", good.subarray(0, good.length >> 1)],
        ["trailing bytes", Buffer.concat([good, Buffer.from([1, 2, 3])])],
        ["corrupt", corrupt],
        ["garbage", Buffer.from("definitely not compressed data, no no")],
      ] as const) {
        assert.match(await guestDecompress(format, bytes), /^ERROR TypeError: /, `${format} ${what}`);
      }
    });
  }

  test("an unknown format is a TypeError; chunks must be BufferSources", async () => {
    const out = await json(`
      const cs = new CompressionStream("gzip"); const w = cs.writable.getWriter(); w.write("text").catch(() => {});
      return Response.json({ br: await caught(() => new CompressionStream("br")), none: await caught(() => new DecompressionStream()),
        chunk: await caught(() => collect(cs.readable)), tag: String(new CompressionStream("deflate")) });`);
    assert.deepEqual(out, { br: "TypeError", none: "TypeError", chunk: "TypeError", tag: "[object CompressionStream]" });
  });
});
