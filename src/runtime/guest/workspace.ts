/**
 * A workspace binding in the guest, shaped like node:fs/promises. Every call crosses to the host
 * (bindings/workspace); file bodies larger than a small copy cross as streams through the same
 * capability body mechanism fetch and R2 use (capabilityBody to read, a sink to write), so a file
 * larger than the isolate's memory can be read and written a chunk at a time.
 */
import { capabilityBody, sendToCapability } from "./body-bridge.ts";
import { copyBytes } from "./buffer-source.ts";
import { isReadableStream, readAllBytes, streams } from "./streams.ts";
import { utf8Decode, utf8Encode } from "./utf8.ts";

type Call = (id: number, method: string, args: unknown[]) => Promise<unknown>;
type Body = Uint8Array | { __mayflyStream: number };

/** The runtime's request for a body sink (engine/capability-router.ts SINK). */
const SINK = "mayfly:sink";

/**
 * Host failures cross as name and message; a workspace's message starts with Node's code ("ENOENT: …"),
 * which becomes `.code` again here, as on a node:fs error.
 */
function withCode(e: unknown): never {
  const err = e as { name?: string; message?: string };
  const code = /^([A-Z][A-Z0-9_]+): /.exec(err?.message ?? "")?.[1];
  if (!code) throw e;
  const out = new Error(err.message) as Error & { code: string };
  out.name = err.name ?? "Error";
  out.code = code;
  throw out;
}

function encodingOf(options: unknown): string | undefined {
  return typeof options === "string" ? options : ((options as { encoding?: string } | undefined)?.encoding ?? undefined);
}

function statOf(s: { type: "file" | "dir"; size: number; version: number; mtimeMs: number }): object {
  return Object.freeze({
    size: s.size, version: s.version, mtimeMs: s.mtimeMs, mtime: new Date(s.mtimeMs),
    isFile: () => s.type === "file", isDirectory: () => s.type === "dir", isSymbolicLink: () => false,
  });
}

export function workspaceStub(id: number, callCapability: Call): object {
  const call = (method: string, ...args: unknown[]) => callCapability(id, method, args).catch(withCode);
  const bodyOf = (body: Body) => (body instanceof Uint8Array ? body : capabilityBody(body.__mayflyStream));

  /** Text and bytes cross with the call; a stream is written into a sink the host reads as it stores. */
  const send = async (method: string, path: unknown, data: unknown): Promise<void> => {
    if (isReadableStream(data)) {
      const sinkId = (await callCapability(id, SINK, [])) as number;
      void sendToCapability(data, sinkId);
      await call(method, path, { __mayflySink: sinkId }).catch((e: unknown) => {
        void callCapability(sinkId, "abort", ["The write failed."]).catch(() => {});
        throw e;
      });
      return;
    }
    const bytes = typeof data === "string" ? data : copyBytes(data);
    if (bytes === undefined) throw new TypeError("File data must be a string, an ArrayBuffer(View) or a ReadableStream.");
    await call(method, path, bytes);
  };

  return Object.freeze({
    async readFile(path: string, options?: unknown) {
      const version = (options as { version?: number } | undefined)?.version;
      const r = (await call("readFile", path, version === undefined ? {} : { version })) as { body: Body };
      const body = bodyOf(r.body);
      const bytes = body instanceof Uint8Array ? body : await readAllBytes(body).catch(withCode);
      const encoding = encodingOf(options);
      if (encoding === undefined || encoding === null) return bytes;
      if (encoding !== "utf8" && encoding !== "utf-8") throw new TypeError(`Unsupported encoding "${encoding}" (workspaces read bytes or "utf8").`);
      return utf8Decode(bytes);
    },
    writeFile: (path: string, data: unknown) => send("writeFile", path, data),
    appendFile: (path: string, data: unknown) => send("appendFile", path, data),
    /** A file as a ReadableStream, fetched from the host a chunk per read. */
    createReadStream(path: string, options?: { version?: number }) {
      const RS = streams().ReadableStream as unknown as typeof ReadableStream;
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      return new RS<Uint8Array>({
        async start() {
          const r = (await call("open", path, options?.version === undefined ? {} : { version: options.version })) as { body: Body };
          const body = bodyOf(r.body);
          reader = (body instanceof Uint8Array ? new RS<Uint8Array>({ start: (c) => { c.enqueue(body); c.close(); } }) : body).getReader();
        },
        async pull(controller) {
          const { done, value } = await reader!.read().catch(withCode);
          if (done) controller.close();
          else controller.enqueue(value);
        },
        cancel: (reason) => reader?.cancel(reason),
      }, { highWaterMark: 0 });
    },
    /** A WritableStream into a file: each chunk goes to the host as it is written; close() resolves once stored. */
    createWriteStream(path: string) {
      const WS = streams().WritableStream as unknown as typeof WritableStream;
      let sinkId = 0;
      let stored: Promise<unknown> = Promise.resolve();
      const sink = (method: string, ...args: unknown[]) => callCapability(sinkId, method, args);
      // A write the host refused (quota, permission) ends the stored promise first: its error wins.
      const orStored = (p: Promise<unknown>) => Promise.race([p, stored.then(() => new Promise(() => {}))]);
      return new WS<unknown>({
        async start() {
          sinkId = (await callCapability(id, SINK, [])) as number;
          stored = call("writeFile", path, { __mayflySink: sinkId });
          stored.catch(() => {});
        },
        async write(chunk) {
          const bytes = copyBytes(chunk) ?? (typeof chunk === "string" ? utf8Encode(chunk) : undefined);
          if (!bytes) throw new TypeError("A file's chunks must be bytes or strings.");
          if (bytes.byteLength > 0) await orStored(sink("write", bytes)).catch(async (e) => stored.then(() => { throw e; }));
        },
        async close() {
          await sink("close").catch(() => {});
          await stored;
        },
        async abort(reason) {
          await sink("abort", String((reason as Error)?.message ?? reason ?? "The write was aborted.")).catch(() => {});
          await stored.catch(() => {});
        },
      });
    },
    stat: async (path: string) => statOf((await call("stat", path)) as Parameters<typeof statOf>[0]),
    async readdir(path: string, options?: { withFileTypes?: boolean; recursive?: boolean }) {
      const entries = (await call("readdir", path, { recursive: !!options?.recursive })) as { name: string; type: "file" | "dir" }[];
      if (!options?.withFileTypes) return entries.map((e) => e.name);
      return entries.map((e) => Object.freeze({ name: e.name, parentPath: path, isFile: () => e.type === "file", isDirectory: () => e.type === "dir", isSymbolicLink: () => false }));
    },
    mkdir: (path: string, options?: { recursive?: boolean }) => call("mkdir", path, { recursive: !!options?.recursive }),
    rm: async (path: string, options?: { recursive?: boolean; force?: boolean }) => void (await call("rm", path, { recursive: !!options?.recursive, force: !!options?.force })),
    rename: async (from: string, to: string) => void (await call("rename", from, to)),
    cp: async (from: string, to: string, options?: { recursive?: boolean }) => void (await call("cp", from, to, { recursive: !!options?.recursive })),
    glob: (pattern: string) => call("glob", pattern),
    async grep(pattern: unknown, options?: { path?: string }) {
      const p = pattern instanceof RegExp ? { source: pattern.source, flags: pattern.flags } : { source: String(pattern), flags: "" };
      return ((await call("grep", p, { path: options?.path ?? "" })) as { matches: unknown[] }).matches;
    },
    diff: (a: string, b: unknown) => call("diff", a, b),
    commit: (ops: unknown, options?: unknown) => call("commit", ops, options ?? {}),
    restore: async (path: string, version: number) => void (await call("restore", path, version)),
    history: (path: string) => call("history", path),
    changes: (since?: number) => call("changes", since ?? 0),
  });
}
