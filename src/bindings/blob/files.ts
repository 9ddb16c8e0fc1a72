/**
 * The bucket's file work: a value (bytes, text or a stream) written beside its final path and fsynced,
 * for the caller to rename into place, so a reader sees the old file or the new one, never half.
 */
import { closeSync, createReadStream, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { createHash, randomUUID } from "node:crypto";

export type StoredValue = string | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>;

/**
 * Writes `value` to a temporary file beside `path`; past `room` bytes, fails with `tooBig()` and leaves
 * nothing. `durable: false` skips the fsync, for a file that only stages an upload elsewhere.
 */
export async function writeAside(path: string, value: StoredValue | AsyncIterable<Uint8Array>, room: number, tooBig: () => Error, durable = true): Promise<{ tmp: string; size: number; md5: Buffer }> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  const md5 = createHash("md5");
  let size = 0;
  const fd = openSync(tmp, "w");
  try {
    for await (const chunk of chunksOf(value)) {
      size += chunk.byteLength;
      if (size > room) throw tooBig();
      md5.update(chunk);
      for (let done = 0; done < chunk.byteLength;) done += writeSync(fd, chunk, done);
    }
    if (durable) fsyncSync(fd);
  } catch (e) {
    if (value instanceof ReadableStream) await value.cancel().catch(() => {});
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  return { tmp, size, md5: md5.digest() };
}

/** The files' bytes one after another (a multipart upload's parts, in order). */
export async function* concatenated(files: string[]): AsyncGenerator<Uint8Array> {
  for (const file of files) for await (const chunk of createReadStream(file)) yield chunk as Buffer;
}

/** The md5 of a file, hex: a part's etag. */
export async function md5File(file: string): Promise<string> {
  const md5 = createHash("md5");
  for await (const chunk of createReadStream(file)) md5.update(chunk as Buffer);
  return md5.digest("hex");
}

/** A value to store, as byte chunks: one for bytes or text, as they come for a stream. */
async function* chunksOf(value: StoredValue | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (typeof value === "string") yield Buffer.from(value, "utf8");
  else if (ArrayBuffer.isView(value)) yield new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  else if (value instanceof ArrayBuffer) yield new Uint8Array(value);
  else for await (const chunk of value as AsyncIterable<Uint8Array>) yield chunk;
}
