/**
 * Blob and File (W3C File API §3, §4) and FormData (XHR Standard §4) inside the isolate, driven
 * through the public API: each worker answers with JSON that the host checks.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { responseJson, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

const PRELUDE = `
const caught = async (f) => { try { await f(); return "no error"; } catch (e) { return e.name; } };
`;

async function json(body: string): Promise<any> {
  const stub = ctx.loader.load(worker(`${PRELUDE} export default { async fetch(request, env, ctx) { ${body} } }`));
  const res = await stub.getEntrypoint().fetch("http://w/");
  return responseJson(res);
}

describe("Blob (File API §3)", () => {
  test("parts: strings (UTF-8), ArrayBuffers, views and Blobs, in order; size", async () => {
    const out = await json(`
      const buf = new Uint8Array([1, 2, 3, 4]).buffer;
      const b = new Blob(["é", buf, new Uint8Array(buf, 1, 2), new DataView(buf, 3, 1), new Blob(["!"]), 42, new Uint16Array([0x0201])]);
      return Response.json({ size: b.size, bytes: [...await b.bytes()], empty: [new Blob().size, new Blob([]).type],
        tag: Object.prototype.toString.call(b), lone: [...await new Blob(["\\uD800"]).bytes()] });`);
    assert.deepEqual(out, {
      size: 14, bytes: [0xc3, 0xa9, 1, 2, 3, 4, 2, 3, 4, 0x21, 0x34, 0x32, 1, 2],
      empty: [0, ""], tag: "[object Blob]", lone: [0xef, 0xbf, 0xbd],
    });
  });

  test("type is lowercased, or empty if not printable ASCII; endings: native converts line breaks", async () => {
    const out = await json(`
      return Response.json({ upper: new Blob([], { type: "Text/HTML;Charset=UTF-8" }).type, nonAscii: new Blob([], { type: "text/é" }).type,
        control: new Blob([], { type: "a\\tb" }).type, native: await new Blob(["a\\r\\nb\\rc\\n"], { endings: "native" }).text(),
        transparent: await new Blob(["a\\r\\nb"]).text(), badEndings: await caught(() => new Blob([], { endings: "weird" })),
        notSequence: await caught(() => new Blob("abc")), badOptions: await caught(() => new Blob([], 5)) });`);
    assert.deepEqual(out, {
      upper: "text/html;charset=utf-8", nonAscii: "", control: "", native: "a\nb\nc\n", transparent: "a\r\nb",
      badEndings: "TypeError", notSequence: "TypeError", badOptions: "TypeError",
    });
  });

  test("slice(): positions clamp, negative counts from the end, a content type may be given", async () => {
    const out = await json(`
      const b = new Blob(["hello world"], { type: "text/plain" });
      const t = (x) => x.text();
      return Response.json({ all: await t(b.slice()), from: await t(b.slice(6)), neg: await t(b.slice(-5, -1)), past: await t(b.slice(3, 100)),
        reversed: b.slice(5, 2).size, negStart: await t(b.slice(-100, 2)), type: [b.slice().type, b.slice(0, 1, "X/Y").type],
        nested: await t(b.slice(2, 9).slice(1, -1)) });`);
    assert.deepEqual(out, { all: "hello world", from: "world", neg: "worl", past: "lo world", reversed: 0, negStart: "he", type: ["", "x/y"], nested: "lo wo" });
  });

  test("text(), arrayBuffer(), bytes() and stream() read the bytes; what they return is a copy", async () => {
    const out = await json(`
      const b = new Blob(["abc"]);
      const u8 = await b.bytes(); u8[0] = 0x7a;
      const ab = await b.arrayBuffer(); new Uint8Array(ab)[1] = 0x7a;
      const chunks = []; for await (const c of b.stream()) chunks.push(...c);
      const byob = b.stream().getReader({ mode: "byob" }); const part = await byob.read(new Uint8Array(2));
      return Response.json({ text: await b.text(), ab: ab instanceof ArrayBuffer, chunks, part: [...part.value], streamIsRS: b.stream() instanceof ReadableStream });`);
    assert.deepEqual(out, { text: "abc", ab: true, chunks: [97, 98, 99], part: [97, 98], streamIsRS: true });
  });

  test("the source buffer can change after construction without changing the Blob", async () => {
    const out = await json(`
      const src = new Uint8Array([1, 2, 3]);
      const b = new Blob([src]); src[0] = 9;
      return Response.json([...await b.bytes()]);`);
    assert.deepEqual(out, [1, 2, 3]);
  });
});

describe("File (File API §4)", () => {
  test("a Blob with a name and a lastModified time", async () => {
    const out = await json(`
      const f = new File(["data"], "name.txt", { type: "Text/Plain", lastModified: 1234 });
      const d = new File([], "x");
      return Response.json({ f: [f.name, f.type, f.size, f.lastModified, await f.text()], blob: f instanceof Blob, file: f instanceof File,
        tag: Object.prototype.toString.call(f), defaultTime: typeof d.lastModified === "number" && d.lastModified === Date.now(),
        slice: [f.slice(1).constructor.name, await f.slice(1).text()], missing: await caught(() => new File(["x"])),
        coerced: new File([], 12).name });`);
    assert.deepEqual(out, {
      f: ["name.txt", "text/plain", 4, 1234, "data"], blob: true, file: true, tag: "[object File]", defaultTime: true,
      slice: ["Blob", "ata"], missing: "TypeError", coerced: "12",
    });
  });
});

describe("FormData (XHR §4)", () => {
  test("append, get, getAll, has, set, delete, and iteration in order", async () => {
    const out = await json(`
      const fd = new FormData();
      fd.append("a", "1"); fd.append("b", "2"); fd.append("a", "3"); fd.append("n", 5);
      const before = { get: fd.get("a"), all: fd.getAll("a"), has: [fd.has("a"), fd.has("z")], missing: fd.get("z"), entries: [...fd] };
      fd.set("a", "x");
      const afterSet = [...fd.entries()];
      fd.delete("b");
      const seen = []; fd.forEach((v, k, self) => seen.push([k, v, self === fd]));
      return Response.json({ before, afterSet, keys: [...fd.keys()], values: [...fd.values()], seen, tag: String(fd),
        lone: (() => { const f = new FormData(); f.append("\\uD800", "\\uDC00"); return [...f.keys(), ...f.values()]; })() });`);
    assert.deepEqual(out.before, { get: "1", all: ["1", "3"], has: [true, false], missing: null, entries: [["a", "1"], ["b", "2"], ["a", "3"], ["n", "5"]] });
    assert.deepEqual(out.afterSet, [["a", "x"], ["b", "2"], ["n", "5"]]);
    assert.deepEqual(out.keys, ["a", "n"]);
    assert.deepEqual(out.values, ["x", "5"]);
    assert.deepEqual(out.seen, [["a", "x", true], ["n", "5", true]]);
    assert.equal(out.tag, "[object FormData]");
    assert.deepEqual(out.lone, ["\ufffd", "\ufffd"], "names and values are USVStrings");
  });

  test("Blob values become Files (named 'blob' unless a filename is given); Files keep their name", async () => {
    const out = await json(`
      const fd = new FormData();
      const file = new File(["f"], "orig.txt", { type: "text/x", lastModified: 7 });
      fd.append("blob", new Blob(["b"], { type: "image/png" }));
      fd.append("named", new Blob(["b"]), "given.bin");
      fd.append("file", file);
      fd.append("renamed", file, "new.txt");
      fd.set("setblob", new Blob(["s"]), "s.txt");
      const d = (v) => [v instanceof File, v.name, v.type, v.size];
      return Response.json({ blob: d(fd.get("blob")), named: d(fd.get("named")), same: fd.get("file") === file,
        renamed: [...d(fd.get("renamed")), fd.get("renamed").lastModified, await fd.get("renamed").text()], setblob: d(fd.get("setblob")),
        stringWithName: await caught(() => fd.append("x", "str", "name.txt")), tooFew: await caught(() => fd.append("x")),
        form: await caught(() => new FormData({})) });`);
    assert.deepEqual(out, {
      blob: [true, "blob", "image/png", 1], named: [true, "given.bin", "", 1], same: true,
      renamed: [true, "new.txt", "text/x", 1, 7, "f"], setblob: [true, "s.txt", "", 1],
      stringWithName: "TypeError", tooFew: "TypeError", form: "TypeError",
    });
  });

  test("iteration is live: entries appended during iteration are visited", async () => {
    const out = await json(`
      const fd = new FormData(); fd.append("a", "1");
      const seen = [];
      for (const [k] of fd) { seen.push(k); if (seen.length < 3) fd.append("k" + seen.length, "v"); }
      return Response.json(seen);`);
    assert.deepEqual(out, ["a", "k1", "k2"]);
  });

  test("a FormData body round-trips through multipart/form-data (Fetch §5.2, §5.3)", async () => {
    const out = await json(`
      const fd = new FormData();
      fd.append("text", "multi\\nline");
      fd.append("file", new File([new Uint8Array([0, 255, 13, 10, 45, 45])], "bin.dat", { type: "application/x-bin" }));
      fd.append("empty", new Blob([]), "");
      const req = new Request("http://x/", { method: "POST", body: fd });
      const back = await req.formData();
      const f = back.get("file"); const e = back.get("empty");
      return Response.json({ type: req.headers.get("content-type").startsWith("multipart/form-data; boundary="), text: back.get("text"),
        file: [f.name, f.type, [...await f.bytes()]], empty: [e instanceof File, e.name, e.size] });`);
    assert.deepEqual(out, {
      type: true, text: "multi\r\nline", file: ["bin.dat", "application/x-bin", [0, 255, 13, 10, 45, 45]], empty: [true, "", 0],
    });
  });
});
