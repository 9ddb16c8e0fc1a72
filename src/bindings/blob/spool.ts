/**
 * A value made ready for an S3 request, which needs its length (and we send its MD5) up front:
 * bytes and text as they are; a stream written to a temporary file as it arrives (so a large object
 * is never whole in memory), the quota checked on the way.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, rmSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { writeAside, type StoredValue } from "./files.ts";

export interface Spooled {
  size: number;
  md5: Buffer;
  /** The body for one request. */
  open(): Uint8Array | Readable;
  /** Removes the temporary file, if there was one. */
  dispose(): void;
}

export async function spool(value: StoredValue, room: number, tooBig: () => Error, dir: string): Promise<Spooled> {
  if (value instanceof ReadableStream) {
    // Not fsynced: S3 holds the durable copy; a crash only loses the upload in progress.
    const written = await writeAside(join(dir, `mayfly-blob-${randomUUID()}`), value, room, tooBig, false);
    return { size: written.size, md5: written.md5, open: () => createReadStream(written.tmp), dispose: () => rmSync(written.tmp, { force: true }) };
  }
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8")
    : value instanceof ArrayBuffer ? new Uint8Array(value)
    : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (bytes.byteLength > room) throw tooBig();
  return { size: bytes.byteLength, md5: createHash("md5").update(bytes).digest(), open: () => bytes, dispose: () => {} };
}
