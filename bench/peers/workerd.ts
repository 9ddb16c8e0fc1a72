// Benchmark peer: Cloudflare's `workerd` with its Worker Loader API.
//
// Starts `workerd serve --experimental` on 127.0.0.1 with one host worker that
// has a `LOADER` (worker_loaders) binding, and exposes:
//   GET /load?n=K        fresh dynamic worker via LOADER.load() (nonce in code,
//                        nothing cached), one fetch to it, returns its body
//   GET /get?id=X        LOADER.get(X, ...) (warm path when X is reused), one
//                        fetch, returns its body
//   GET /hold?count=N    LOADER.get("hold-"+i, ...) for i < N and one fetch each,
//                        so N isolates stay loaded (memory per live isolate =
//                        RSS delta of the workerd process / N). Optional
//                        `prefix=` (default "hold-") and `concurrency=` (default 8).
//   GET /health          "ok"
//
// The capnp config and the host worker's JS are written into a temp dir that
// close() removes.

import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface WorkerdPeer {
  url: string; // http://127.0.0.1:PORT of the host worker
  pid: number; // workerd process pid (for /proc/PID/status VmRSS)
  close(): Promise<void>; // kills workerd, removes temp files
}

export interface WorkerdPeerOptions {
  port?: number;
  /** ms to wait for the port to answer (default 30000). */
  startTimeoutMs?: number;
  /** forward workerd's stdout/stderr to this process's stderr (default false). */
  verbose?: boolean;
}

// The compatibility date of the *host* worker. Must be <= the installed
// workerd's supported date (2026-11-17 for workerd 1.20261117.x); we pick a
// fixed, conservative one so that bumping workerd never breaks the peer.
const HOST_COMPAT_DATE = "2025-06-01";

const HOST_WORKER_JS = String.raw`
const DYN_SRC = 'export default { async fetch(req, env) { return new Response(JSON.stringify({ hello: "world", url: req.url })) } }';

function code(nonce) {
  return {
    compatibilityDate: "2025-06-01",
    mainModule: "main.js",
    // The nonce comment makes every source text distinct, so no compiled-code
    // or isolate cache keyed on the source can be hit.
    modules: { "main.js": (nonce ? "// " + nonce + "\n" : "") + DYN_SRC },
    globalOutbound: null,
  };
}

function nonce() {
  return crypto.randomUUID() + "-" + Date.now();
}

async function callOnce(stub, url) {
  const res = await stub.getEntrypoint().fetch(url);
  return await res.text();
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      switch (url.pathname) {
        case "/health":
          return new Response("ok");
        case "/load": {
          const n = url.searchParams.get("n") ?? "0";
          const stub = env.LOADER.load(code(nonce()));
          const body = await callOnce(stub, "http://dyn/load?n=" + encodeURIComponent(n));
          return new Response(body, { headers: { "content-type": "application/json" } });
        }
        case "/get": {
          const id = url.searchParams.get("id") ?? "default";
          const stub = env.LOADER.get(id, () => code(null));
          const body = await callOnce(stub, "http://dyn/get?id=" + encodeURIComponent(id));
          return new Response(body, { headers: { "content-type": "application/json" } });
        }
        case "/hold": {
          const count = Number(url.searchParams.get("count") ?? "0");
          const prefix = url.searchParams.get("prefix") ?? "hold-";
          const conc = Math.max(1, Number(url.searchParams.get("concurrency") ?? "8"));
          if (!Number.isInteger(count) || count < 0) {
            return new Response("bad count", { status: 400 });
          }
          let next = 0;
          let ok = 0;
          const runOne = async () => {
            while (next < count) {
              const i = next++;
              const id = prefix + i;
              const stub = env.LOADER.get(id, () => code(id));
              await callOnce(stub, "http://dyn/hold?i=" + i);
              ok++;
            }
          };
          const lanes = [];
          for (let k = 0; k < Math.min(conc, count); k++) lanes.push(runOne());
          await Promise.all(lanes);
          return new Response(JSON.stringify({ held: ok }), {
            headers: { "content-type": "application/json" },
          });
        }
        default:
          return new Response("not found", { status: 404 });
      }
    } catch (err) {
      return new Response(String(err && err.stack || err), { status: 500 });
    }
  },
};
`;

function capnpConfig(port: number): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "host", worker = .hostWorker),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:${port}", http = (), service = "host"),
  ],
);

const hostWorker :Workerd.Worker = (
  modules = [
    (name = "host.js", esModule = embed "host.js"),
  ],
  compatibilityDate = "${HOST_COMPAT_DATE}",
  # No compatibility flag is needed for LOADER.get()/load() in this workerd;
  # only the \`--experimental\` CLI flag (workerLoader bindings refuse to start
  # without it).
  bindings = [
    (name = "LOADER", workerLoader = ()),
  ],
);
`;
}

/** Absolute path of the workerd executable shipped by the `workerd` npm package. */
export function workerdBinaryPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const req = createRequire(join(here, "noop.js"));
  try {
    // lib/main.js's default export is the platform binary's path.
    const mod = req("workerd") as { default?: unknown };
    if (typeof mod.default === "string" && existsSync(mod.default)) return mod.default;
  } catch {
    // fall through to the .bin shim
  }
  for (let dir = here; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", ".bin", "workerd");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error("workerd binary not found: run `npm install --save-dev workerd`");
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("could not get a free port"));
        return;
      }
      const port = addr.port;
      srv.close(() => resolvePort(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((r) => {
    const t = setTimeout(() => {
      child.off("exit", onExit);
      r(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(t);
      r(true);
    };
    child.once("exit", onExit);
  });
}

export async function startWorkerdPeer(opts: WorkerdPeerOptions = {}): Promise<WorkerdPeer> {
  const bin = workerdBinaryPath();
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), "mayfly-workerd-"));
  const configPath = resolve(dir, "config.capnp");
  await writeFile(join(dir, "host.js"), HOST_WORKER_JS);
  await writeFile(configPath, capnpConfig(port));

  const child = spawn(bin, ["serve", "--experimental", configPath], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const onData = (chunk: Buffer) => {
    if (output.length < 64 * 1024) output += chunk.toString("utf8");
    if (opts.verbose) process.stderr.write(chunk);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const spawnError = new Promise<Error>((r) => child.once("error", r));

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      if (!(await waitExit(child, 3000))) {
        child.kill("SIGKILL");
        await waitExit(child, 3000);
      }
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
    await rm(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  let lastErr: unknown = null;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await close();
      throw new Error(
        `workerd exited early (code ${child.exitCode}, signal ${child.signalCode}):\n${output}`,
      );
    }
    const early = await Promise.race([spawnError, sleep(0).then(() => null)]);
    if (early) {
      await close();
      throw new Error(`failed to spawn workerd (${bin}): ${early.message}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      const text = await res.text();
      if (res.ok && text === "ok") break;
      lastErr = new Error(`health check answered ${res.status}: ${text}`);
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`workerd did not answer on ${url} in time: ${String(lastErr)}\n${output}`);
    }
    await sleep(50);
  }

  if (child.pid === undefined) {
    await close();
    throw new Error("workerd has no pid");
  }
  return { url, pid: child.pid, close };
}
