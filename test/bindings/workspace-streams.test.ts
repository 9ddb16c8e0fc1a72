import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { workspace } from "../../src/index.ts";
import { useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-ws-streams-");

const SIZE = 50 << 20;
/** The test file's byte at `i`: varied enough that a dropped or reordered chunk changes the hash. */
const byteAt = (i: number) => (i * 7 + (i >> 16)) & 0xff;

function expectedHash(): string {
  const hash = createHash("sha256");
  const block = new Uint8Array(1 << 20);
  for (let at = 0; at < SIZE; at += block.length) {
    for (let j = 0; j < block.length; j++) block[j] = byteAt(at + j);
    hash.update(block);
  }
  return hash.digest("hex");
}

describe("workspace streams: files larger than the isolate's memory", () => {
  test("a 50 MB file is written from a stream and read back as one in a memoryMb: 32 isolate", async () => {
    const ws = workspace({ name: "big", dataDir });
    const load = (body: string) => ctx.loader.load({
      compatibilityDate: "2025-06-01", mainModule: "m.js", env: { FS: ws }, limits: { memoryMb: 32, cpuMs: 60_000, wallMs: 120_000 },
      modules: { "m.js": `const byteAt = ${byteAt.toString()}; export default { async fetch(request, env) { ${body} } }` },
    });
    // Written two ways: writeFile(path, ReadableStream) and createWriteStream(path).
    const write = load(`
      const source = () => { let at = 0; return new ReadableStream({ pull(c) {
        if (at >= ${SIZE}) return c.close();
        const chunk = new Uint8Array(256 * 1024); for (let j = 0; j < chunk.length; j++) chunk[j] = byteAt(at + j);
        at += chunk.length; c.enqueue(chunk);
      } }) };
      await env.FS.writeFile("big.bin", source());
      await source().pipeTo(env.FS.createWriteStream("big-2.bin"));
      return Response.json((await env.FS.stat("big.bin")).size + (await env.FS.stat("big-2.bin")).size);`);
    assert.equal(await (await write.getEntrypoint().fetch("http://w/")).json(), 2 * SIZE);
    const read = load(`
      const out = {};
      for (const name of ["big.bin", "big-2.bin"]) {
        let bytes = 0, wrong = 0;
        for await (const chunk of env.FS.createReadStream(name)) {
          for (let j = 0; j < chunk.length; j += 4093) if (chunk[j] !== byteAt(bytes + j)) wrong++;
          bytes += chunk.length;
        }
        out[name] = { bytes, wrong };
      }
      return Response.json(out);`);
    assert.deepEqual(await (await read.getEntrypoint().fetch("http://w/")).json(), { "big.bin": { bytes: SIZE, wrong: 0 }, "big-2.bin": { bytes: SIZE, wrong: 0 } });
    const want = expectedHash();
    for (const name of ["big.bin", "big-2.bin"]) {
      const hash = createHash("sha256");
      for await (const chunk of ws.createReadStream(name) as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
      assert.equal(hash.digest("hex"), want, name);
    }
    ws.close();
  });

  test("readFile of a file over the copy size crosses as a stream and arrives whole", async () => {
    const ws = workspace({ name: "medium", dataDir });
    const data = new Uint8Array(3 << 20).map((_, i) => byteAt(i));
    await ws.writeFile("m.bin", data);
    const stub = ctx.loader.load({
      compatibilityDate: "2025-06-01", mainModule: "m.js", env: { FS: ws },
      modules: { "m.js": `export default { async fetch(request, env) { const b = await env.FS.readFile("m.bin"); let s = 0; for (let i = 0; i < b.length; i += 1000) s += b[i]; return Response.json([b.length, s]) } }` },
    });
    let s = 0;
    for (let i = 0; i < data.length; i += 1000) s += data[i]!;
    assert.deepEqual(await (await stub.getEntrypoint().fetch("http://w/")).json(), [3 << 20, s]);
    ws.close();
  });
});
