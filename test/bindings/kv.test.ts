import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { kv } from "../../src/index.ts";
import { useTempDir } from "../helpers.ts";
import { kvSuite } from "./kv.suite.ts";

const dataDir = useTempDir("mayfly-kv-");

kvSuite("SQLite", (name, options) => kv({ name, dataDir, ...options }));

describe("KV binding on SQLite: files", () => {
  test("names cannot leave the data directory", async () => {
    const ns = kv({ name: "../../escape", dataDir });
    await ns.put("k", "v");
    await ns.close();
    assert.ok(readdirSync(join(dataDir, "kv")).some((f) => f.startsWith(".2e.2e.2f")), "the odd name became an escaped file name inside kv/");
    assert.ok(!existsSync(join(dataDir, "..", "escape.sqlite")));
  });
});
