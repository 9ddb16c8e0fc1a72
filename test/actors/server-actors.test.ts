import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startServer, serverOptionsFromConfig } from "../../src/server/index.ts";
import { parseConfig } from "../../src/server/config.ts";
import { ConfigError } from "../../src/index.ts";
import { useTempDir } from "../helpers.ts";

const dataDir = useTempDir("mayfly-actors-server-");
const examples = fileURLToPath(new URL("../../examples/", import.meta.url));

function serve() {
  const config = parseConfig({ workers: { counter: { main: "workers/counter.ts", actors: { COUNTER: { className: "Counter" } } } } }, examples);
  return startServer(serverOptionsFromConfig(config, { port: 0, dataDir, loader: { executors: 1 }, playground: false }));
}

test("a named worker reaches its actors by name through env.COUNTER, and they outlive the server", async () => {
  let server = await serve();
  try {
    const values = await Promise.all(Array.from({ length: 20 }, async () => (await (await fetch(`${server.url}/w/counter/a`)).json()).value));
    assert.deepEqual(values.sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(await (await fetch(`${server.url}/w/counter/b`)).json(), { name: "b", value: 1, hits: 1 });
  } finally {
    await server.close();
  }
  server = await serve();
  try {
    assert.deepEqual(await (await fetch(`${server.url}/w/counter/a`)).json(), { name: "a", value: 21, hits: 21 });
  } finally {
    await server.close();
  }
});

test("an actors entry is checked at startup", () => {
  assert.throws(() => parseConfig({ workers: { c: { main: "w.ts", actors: { COUNTER: { className: "not a class" } } } } }, examples), ConfigError);
  assert.throws(() => parseConfig({ workers: { c: { main: "w.ts", actors: { COUNTER: { class: "Counter" } } } } }, examples), ConfigError);
});
