/**
 * A workspace in and out of the host: seeded from a directory, exported and imported as tar (with
 * tar-stream, streamed both ways so neither side holds a large file whole). Symbolic links and other
 * special files are skipped: a link could name a place outside what was meant to be copied.
 */
import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { once } from "node:events";
import tar from "tar-stream";
import type { Workspace } from "./index.ts";

type Source = AsyncIterable<Buffer> & { header: tar.Header; resume(): void };

/** streamx's end() takes an optional chunk its typings make required. */
function endOf(stream: object): void {
  (stream as { end(): void }).end();
}

/** Resolves when a stream wants more, or has closed (destroyed: the other side gave up). */
async function drained(stream: object): Promise<void> {
  const ac = new AbortController();
  const e = stream as import("node:events").EventEmitter;
  try {
    await Promise.race([once(e, "drain", { signal: ac.signal }), once(e, "close", { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

interface Exported { path: string; type: "file" | "dir"; mtime: number; size: number; read(): ReadableStream<Uint8Array> }

/** Host files under `dir` written into the workspace under `into`; answers how many files. */
export async function importDirectory(ws: Workspace, dir: string, into: string): Promise<number> {
  let files = 0;
  const prefix = into === "" ? "" : `${into.replace(/\/+$/, "")}/`;
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const rel = relative(dir, join(d.parentPath, d.name)).split(sep).join("/");
    if (d.isDirectory()) await ws.mkdir(prefix + rel, { recursive: true });
    else if (d.isFile()) {
      await ws.writeFile(prefix + rel, createReadStream(join(d.parentPath, d.name)));
      files++;
    }
  }
  return files;
}

/** A tar of the entries (once listed: a failure to list is the stream's error), each file's bytes read from storage as the archive is consumed. */
export function exportTar(listed: Promise<Exported[]>): ReadableStream<Uint8Array> {
  const pack = tar.pack();
  listed.catch(() => {}); // handled by feed(), which may not reach it before it settles
  const feed = async () => {
    for (const e of await listed) {
      const mtime = new Date(e.mtime);
      if (e.type === "dir") {
        pack.entry({ name: `${e.path}/`, type: "directory", mtime });
        continue;
      }
      let entry!: ReturnType<typeof pack.entry>;
      // The callback runs once the entry's bytes are all in the archive (or it failed).
      const written = new Promise<void>((resolve, reject) => {
        entry = pack.entry({ name: e.path, type: "file", size: e.size, mtime }, (err) => (err ? reject(err) : resolve()));
      });
      for await (const chunk of e.read() as unknown as AsyncIterable<Uint8Array>) {
        if (!entry.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) await drained(entry);
      }
      endOf(entry);
      await written;
    }
    pack.finalize();
  };
  feed().catch((e: unknown) => pack.destroy(e as Error));
  const it = (pack as unknown as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await it.next();
      if (next.done) controller.close();
      else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
    },
    cancel: () => void pack.destroy(),
  }, { highWaterMark: 0 });
}

/** A tar's directories and files written into the workspace under `into`; answers how many files. */
export async function importTar(ws: Workspace, source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, into: string): Promise<number> {
  const extract = tar.extract();
  const feed = async () => {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      // Leaving the loop cancels the source: the import failed and nothing more is read.
      if (extract.destroyed) return;
      if (!extract.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) await drained(extract);
    }
    endOf(extract);
  };
  const feeding = feed().catch((e: unknown) => extract.destroy(e as Error));
  const prefix = into === "" ? "" : `${into}/`;
  let files = 0;
  try {
    for await (const entry of extract as unknown as AsyncIterable<Source>) {
      const name = entry.header.name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
      if (entry.header.type === "directory" && name !== "" && name !== ".") await ws.mkdir(prefix + name, { recursive: true });
      else if (entry.header.type === "file") {
        await ws.writeFile(prefix + name, entry);
        files++;
      }
      // A skipped entry is drained, so the next can be read.
      entry.resume();
    }
  } catch (e) {
    extract.destroy();
    throw e;
  }
  await feeding;
  return files;
}
