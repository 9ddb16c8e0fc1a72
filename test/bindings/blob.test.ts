import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { blobBucket } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";
import { blobSuite } from "./blob.suite.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-blob-");

/** Temporary files left in a bucket's objects directory. */
function tmpFiles(name: string): string[] {
  const objectsDir = readdirSync(join(dataDir, "blob")).find((d) => d === `${name}.objects`);
  return objectsDir ? readdirSync(join(dataDir, "blob", objectsDir)).filter((f) => f.endsWith(".tmp")) : [];
}

blobSuite("files + SQLite (the default store)", {
  make: (name, options) => blobBucket({ name, dataDir, ...options }),
  loader: () => ctx.loader,
  leftovers: tmpFiles,
  compositeMultipartEtag: true,
});

test("the file store names object files by the key's hash: no key is ever part of a path", async () => {
  await runHandler(ctx.loader, `await env.B.put("../../../etc/passwd", "x"); return Response.json(null);`, { B: blobBucket({ name: "hashed", dataDir }) });
  const files = readdirSync(join(dataDir, "blob", "hashed.objects"));
  assert.equal(files.length, 1);
  for (const f of files) assert.match(f, /^[0-9a-f]{64}$/);
});
