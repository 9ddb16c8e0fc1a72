// Workspace binding (issue 11): 1,000 small files written and read back in one run, a 50 MB file
// streamed in and out of a memoryMb: 32 isolate, and readFile of a 4 KB file through the binding (ops/s).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerLoader, workspace, type Workspace, type WorkerCode } from "../src/index.ts";

export interface WorkspaceOps {
  smallFilesMs: number;
  bigWriteMs: number;
  bigReadMs: number;
  readOpsPerSec: number;
  readOps: number;
}

const BIG = 50 << 20;

function code(ws: Workspace, body: string, limits: WorkerCode["limits"] = {}): WorkerCode {
  return {
    compatibilityDate: "2025-06-01", mainModule: "m.js", env: { FS: ws }, limits: { cpuMs: 60_000, wallMs: 120_000, ...limits },
    modules: { "m.js": `export default { async fetch(request, env) { ${body} } }` },
  };
}

/** Runs one worker once; its JSON answer and the wall time of the call in ms. */
async function run(loader: WorkerLoader, c: WorkerCode): Promise<{ value: unknown; ms: number }> {
  const stub = loader.load(c);
  try {
    const t0 = performance.now();
    const res = await stub.getEntrypoint().fetch("http://w/");
    const value = await res.json();
    if (!res.ok) throw new Error(`workspace bench: ${JSON.stringify(value)}`);
    return { value, ms: performance.now() - t0 };
  } finally {
    stub.dispose();
  }
}

export async function benchWorkspace(executors: number, readOps = 2_000): Promise<WorkspaceOps> {
  const dataDir = mkdtempSync(join(tmpdir(), "mayfly-bench-ws-"));
  const loader = new WorkerLoader({ executors });
  const ws = workspace({ name: "bench", dataDir });
  try {
    await loader.ready();
    const small = await run(loader, code(ws, `
      for (let i = 0; i < 1000; i++) await env.FS.writeFile("small/" + i + ".txt", "file number " + i);
      let bytes = 0;
      for (let i = 0; i < 1000; i++) bytes += (await env.FS.readFile("small/" + i + ".txt", "utf8")).length;
      return Response.json(bytes);`));
    const bigWrite = await run(loader, code(ws, `
      let at = 0;
      await env.FS.writeFile("big.bin", new ReadableStream({ pull(c) {
        if (at >= ${BIG}) return c.close();
        c.enqueue(new Uint8Array(256 * 1024).fill(at & 0xff)); at += 256 * 1024;
      } }));
      return Response.json((await env.FS.stat("big.bin")).size);`, { memoryMb: 32 }));
    if (bigWrite.value !== BIG) throw new Error(`workspace bench: wrote ${bigWrite.value} bytes`);
    const bigRead = await run(loader, code(ws, `
      let bytes = 0;
      for await (const chunk of env.FS.createReadStream("big.bin")) bytes += chunk.length;
      return Response.json(bytes);`, { memoryMb: 32 }));
    if (bigRead.value !== BIG) throw new Error(`workspace bench: read ${bigRead.value} bytes`);
    await ws.writeFile("4k.txt", "x".repeat(4096));
    const reads = await run(loader, code(ws, `
      let bytes = 0;
      for (let i = 0; i < ${readOps}; i++) bytes += (await env.FS.readFile("4k.txt")).byteLength;
      return Response.json(bytes);`));
    if (reads.value !== readOps * 4096) throw new Error(`workspace bench: read ${reads.value} bytes of 4 KB files`);
    return { smallFilesMs: small.ms, bigWriteMs: bigWrite.ms, bigReadMs: bigRead.ms, readOpsPerSec: readOps / (reads.ms / 1000), readOps };
  } finally {
    ws.close();
    await loader.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function workspaceTable(r: WorkspaceOps): string {
  const mbps = (ms: number) => `${((BIG / 2 ** 20) / (ms / 1000)).toFixed(0)} MB/s`;
  return [
    "workspace binding (mayfly only; one run each, through env.FS from a fresh isolate):",
    "",
    "| operation | time | rate |",
    "| --- | --- | --- |",
    `| write 1,000 small files, then read them back (one run) | ${r.smallFilesMs.toFixed(0)} ms | ${(2000 / (r.smallFilesMs / 1000)).toFixed(0)} ops/s |`,
    `| 50 MB file streamed in (writeFile from a ReadableStream), memoryMb 32 | ${r.bigWriteMs.toFixed(0)} ms | ${mbps(r.bigWriteMs)} |`,
    `| the same file streamed out (createReadStream), memoryMb 32 | ${r.bigReadMs.toFixed(0)} ms | ${mbps(r.bigReadMs)} |`,
    `| readFile of a 4 KB file, ${r.readOps} times in one run | ${(r.readOps / r.readOpsPerSec * 1000).toFixed(0)} ms | ${r.readOpsPerSec.toFixed(0)} ops/s |`,
  ].join("\n");
}
