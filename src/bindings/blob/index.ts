/**
 * A blob bucket with R2's core API (put, get with ranges, head, delete, list with prefix and delimiter,
 * customMetadata, httpMetadata, etag, conditional operations, multipart uploads, quotas). This is the
 * surface: it checks arguments and shapes R2 objects; where the bytes live is a store's business
 * (store.ts): files + SQLite by default, or S3-compatible storage with `backend: s3Backend(...)`.
 */
import { BINDING, STREAM_BODIES_OVER, type Bindable, type Capability } from "../capability.ts";
import type { StoredValue } from "./files.ts";
import { FileBlobStore } from "./file-store.ts";
import {
  checkPartNumber, conditionHolds,
  type BlobBackend, type BlobMeta, type BlobStore, type R2Conditional, type R2ListOptions, type R2Range, type R2UploadedPart,
} from "./store.ts";

export type { R2Conditional, R2ListOptions, R2Range, R2UploadedPart, BlobBackend, BlobStore } from "./store.ts";

export interface BlobBucketOptions {
  name: string;
  /** Where the default (file) store keeps its files; unused with `backend`. */
  dataDir?: string;
  quota?: { bytes?: number; objects?: number };
  /** Where the objects live instead of local files, e.g. `s3Backend({ ... })`. */
  backend?: BlobBackend;
}

export interface R2Object {
  key: string;
  version: string;
  size: number;
  etag: string;
  httpEtag: string;
  uploaded: Date;
  httpMetadata: Record<string, string>;
  customMetadata: Record<string, string>;
  /** The range served, for a ranged get. */
  range?: { offset: number; length: number };
}

export interface R2PutOptions { httpMetadata?: Record<string, string>; customMetadata?: Record<string, string>; onlyIf?: R2Conditional }
export interface R2GetOptions { range?: R2Range; onlyIf?: R2Conditional }

export class BlobBucket implements Bindable {
  private readonly store: BlobStore;

  constructor(options: BlobBucketOptions) {
    const quota = { bytes: options.quota?.bytes ?? Infinity, objects: options.quota?.objects ?? Infinity };
    this.store = options.backend
      ? options.backend.openBlobStore(options.name, { quota })
      : new FileBlobStore(options.name, options.dataDir ?? ".mayfly/data", quota);
  }

  [BINDING](): Capability {
    return {
      kind: "r2",
      call: async (method, args) => {
        switch (method) {
          case "put": return this.put(args[0] as string, args[1] as StoredValue, args[2] as R2PutOptions);
          case "get": return this.getForWorker(args[0] as string, args[1] as R2GetOptions | undefined);
          case "head": return this.head(args[0] as string);
          case "createMultipartUpload": return this.createMultipartUpload(args[0] as string, args[1] as R2PutOptions | undefined);
          case "uploadPart": return this.uploadPart(args[0] as string, args[1] as string, args[2] as number, args[3] as StoredValue);
          case "abortMultipartUpload": return this.abortMultipartUpload(args[0] as string, args[1] as string);
          case "completeMultipartUpload": return this.completeMultipartUpload(args[0] as string, args[1] as string, args[2] as R2UploadedPart[]);
          case "delete": return this.delete(args[0] as string | string[]);
          case "list": return this.list(args[0] as R2ListOptions);
          default: throw new TypeError(`Buckets have no method ${method}().`);
        }
      },
    };
  }

  /** A get for a worker: a small object crosses whole; a large one streams as the worker reads it. */
  private async getForWorker(key: string, options: R2GetOptions | undefined): Promise<unknown> {
    checkKey(key);
    const r = await this.store.read(key, options?.range);
    if (!r) return null;
    // A failed condition answers the object's metadata without its body, as R2 does.
    if (options?.onlyIf && !conditionHolds(r.meta, options.onlyIf)) {
      r.discard();
      return toObject(r.meta);
    }
    const object = options?.range ? { ...toObject(r.meta), range: { offset: r.offset, length: r.length } } : toObject(r.meta);
    return { ...object, body: r.length <= STREAM_BODIES_OVER ? await r.bytes() : r.stream() };
  }

  /** Stores an object; a stream is stored as it arrives, the quota checked on the way. */
  async put(key: string, value: StoredValue, options: R2PutOptions = {}): Promise<R2Object | null> {
    checkKey(key);
    const meta = await this.store.put(key, value, { http: options.httpMetadata ?? {}, custom: options.customMetadata ?? {} }, options.onlyIf);
    return meta && toObject(meta);
  }

  async createMultipartUpload(key: string, options: R2PutOptions = {}): Promise<{ key: string; uploadId: string }> {
    checkKey(key);
    const uploadId = await this.store.createMultipartUpload(key, { http: options.httpMetadata ?? {}, custom: options.customMetadata ?? {} });
    return { key, uploadId };
  }

  /** Stores one part (1–10,000; sent again, it replaces the earlier one); answers its etag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<R2UploadedPart> {
    checkUpload(key, uploadId);
    checkPartNumber(partNumber);
    return { partNumber, etag: await this.store.uploadPart(key, uploadId, partNumber, value) };
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    checkUpload(key, uploadId);
    await this.store.abortMultipartUpload(key, uploadId);
  }

  /** Joins the listed parts, in part-number order, into the object; each must be the part uploaded. */
  async completeMultipartUpload(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<R2Object> {
    checkUpload(key, uploadId);
    if (!Array.isArray(parts) || parts.length === 0) throw new TypeError("complete() needs the uploaded parts.");
    const ordered = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    return toObject(await this.store.completeMultipartUpload(key, uploadId, ordered));
  }

  async head(key: string): Promise<R2Object | null> {
    checkKey(key);
    const meta = await this.store.head(key);
    return meta ? toObject(meta) : null;
  }

  async get(key: string, options?: { range?: R2Range }): Promise<(R2Object & { body: ReadableStream<Uint8Array>; arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> }) | null> {
    checkKey(key);
    const r = await this.store.read(key, options?.range);
    if (!r) return null;
    const res = new Response(r.stream());
    const object = options?.range ? { ...toObject(r.meta), range: { offset: r.offset, length: r.length } } : toObject(r.meta);
    return { ...object, body: res.body!, arrayBuffer: () => res.arrayBuffer(), text: () => res.text() };
  }

  async delete(keys: string | string[]): Promise<void> {
    const all = Array.isArray(keys) ? keys : [keys];
    for (const key of all) checkKey(key);
    for (const key of all) await this.store.delete(key);
  }

  /** R2 list: keys in order; with a delimiter, keys past it under the prefix fold into delimitedPrefixes. */
  async list(options: R2ListOptions = {}): Promise<{ objects: R2Object[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }> {
    const listing = await this.store.list(options ?? {});
    return { ...listing, objects: listing.objects.map(toObject) };
  }

  close(): void | Promise<void> {
    return this.store.close();
  }
}

export function blobBucket(options: BlobBucketOptions): BlobBucket {
  return new BlobBucket(options);
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || Buffer.byteLength(key) > 1024) throw new TypeError("Object keys must be 1 to 1024 bytes.");
}

function checkUpload(key: unknown, uploadId: unknown): void {
  checkKey(key);
  if (typeof uploadId !== "string" || uploadId.length === 0 || uploadId.length > 1024) throw new TypeError("uploadId must be the string createMultipartUpload() answered.");
}

function toObject(meta: BlobMeta): R2Object {
  return {
    key: meta.key, version: meta.version, size: meta.size, etag: meta.etag, httpEtag: `"${meta.etag}"`,
    uploaded: new Date(meta.uploaded), httpMetadata: meta.http, customMetadata: meta.custom,
  };
}
