/**
 * The ambient declarations a worker is type-checked against, beside TypeScript's `es2023` and
 * `webworker` libs. Those libs declare the Web APIs mayfly's runtime provides (Request, Response,
 * streams, URL, crypto.subtle, TextEncoder, timers...; the same base Cloudflare's workers-types grew
 * from), so they are not written out again here. What Workers add on top is: the handler shapes
 * (`ExportedHandler`, `ExecutionContext`, `ScheduledController`), `cloudflare:workers`, and the
 * bindings mayfly can grant (service bindings, KV, D1-style SQL, R2-style blobs), as their
 * Cloudflare names so code checks the same on both; the browser binding, whose API is mayfly's own, as
 * MayflyBrowser.
 */
export const WORKERS_TYPES = `
interface ExecutionContext<Props = unknown> {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  readonly props: Props;
}
interface ScheduledController {
  readonly scheduledTime: number;
  readonly cron: string;
  noRetry(): void;
}
interface TraceItem {
  readonly outcome: string;
  readonly scriptName: string | null;
  readonly eventTimestamp: number | null;
  readonly logs: { timestamp: number; level: string; message: unknown[] }[];
  readonly exceptions: { timestamp: number; name: string; message: string }[];
}
type ExportedHandlerFetchHandler<Env = unknown, Props = unknown> =
  (request: Request, env: Env, ctx: ExecutionContext<Props>) => Response | Promise<Response>;
type ExportedHandlerScheduledHandler<Env = unknown> =
  (controller: ScheduledController, env: Env, ctx: ExecutionContext) => void | Promise<void>;
type ExportedHandlerTailHandler<Env = unknown> =
  (events: TraceItem[], env: Env, ctx: ExecutionContext) => void | Promise<void>;
interface ExportedHandler<Env = unknown, Props = unknown> {
  fetch?: ExportedHandlerFetchHandler<Env, Props>;
  scheduled?: ExportedHandlerScheduledHandler<Env>;
  tail?: ExportedHandlerTailHandler<Env>;
}
/** A service binding or another worker's entrypoint: fetch(), and its RPC methods. */
interface Fetcher {
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}
type Service<T = unknown> = Fetcher & { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never };

interface KVNamespaceListKey<Metadata = unknown> { name: string; expiration?: number; metadata?: Metadata }
interface KVNamespaceListResult<Metadata = unknown> { keys: KVNamespaceListKey<Metadata>[]; list_complete: boolean; cursor?: string }
interface KVNamespacePutOptions { expiration?: number; expirationTtl?: number; metadata?: unknown }
interface KVNamespace<Key extends string = string> {
  get(key: Key, type?: "text" | { type?: "text"; cacheTtl?: number }): Promise<string | null>;
  get<T = unknown>(key: Key, type: "json" | { type: "json"; cacheTtl?: number }): Promise<T | null>;
  get(key: Key, type: "arrayBuffer" | { type: "arrayBuffer"; cacheTtl?: number }): Promise<ArrayBuffer | null>;
  get(key: Key, type: "stream" | { type: "stream"; cacheTtl?: number }): Promise<ReadableStream | null>;
  getWithMetadata<Metadata = unknown>(key: Key, type?: string | { type?: string }): Promise<{ value: any; metadata: Metadata | null }>;
  put(key: Key, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: KVNamespacePutOptions): Promise<void>;
  delete(key: Key): Promise<void>;
  list<Metadata = unknown>(options?: { prefix?: string | null; limit?: number; cursor?: string | null }): Promise<KVNamespaceListResult<Metadata>>;
}

interface D1Meta { duration: number; changes: number; last_row_id: number; rows_read: number; rows_written: number; [key: string]: unknown }
interface D1Result<T = Record<string, unknown>> { results: T[]; success: true; meta: D1Meta }
interface D1PreparedStatement {
  bind(...values: unknown[]): D1PreparedStatement;
  first<T = Record<string, unknown>>(column?: string): Promise<T | null>;
  all<T = Record<string, unknown>>(): Promise<D1Result<T>>;
  run<T = Record<string, unknown>>(): Promise<D1Result<T>>;
  raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[]>;
}
interface D1Database {
  prepare(query: string): D1PreparedStatement;
  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]>;
  exec(query: string): Promise<{ count: number; duration: number }>;
}

interface R2HTTPMetadata { contentType?: string; contentLanguage?: string; contentDisposition?: string; contentEncoding?: string; cacheControl?: string; cacheExpiry?: Date }
interface R2Object {
  readonly key: string; readonly version: string; readonly size: number; readonly etag: string; readonly httpEtag: string;
  readonly uploaded: Date; readonly httpMetadata?: R2HTTPMetadata; readonly customMetadata?: Record<string, string>;
  writeHttpMetadata(headers: Headers): void;
}
interface R2ObjectBody extends R2Object {
  readonly body: ReadableStream; readonly bodyUsed: boolean;
  arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string>; json<T = unknown>(): Promise<T>; blob(): Promise<Blob>;
}
interface R2Objects { objects: R2Object[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }
interface R2Bucket {
  head(key: string): Promise<R2Object | null>;
  get(key: string, options?: { onlyIf?: unknown; range?: unknown }): Promise<R2ObjectBody | R2Object | null>;
  put(key: string, value: ReadableStream | ArrayBuffer | ArrayBufferView | string | Blob | null, options?: { httpMetadata?: R2HTTPMetadata | Headers; customMetadata?: Record<string, string>; onlyIf?: unknown }): Promise<R2Object | null>;
  delete(keys: string | string[]): Promise<void>;
  list(options?: { prefix?: string; delimiter?: string; cursor?: string; limit?: number; include?: ("httpMetadata" | "customMetadata")[] }): Promise<R2Objects>;
}

interface SqlStorageCursor<T extends Record<string, SqlStorageValue>> extends Iterable<T> {
  next(): { done?: false; value: T } | { done: true; value?: never };
  toArray(): T[];
  one(): T;
  raw<U extends SqlStorageValue[]>(): IterableIterator<U>;
  readonly columnNames: string[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
}
type SqlStorageValue = ArrayBuffer | string | number | null;
interface SqlStorage {
  exec<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: any[]): SqlStorageCursor<T>;
  readonly databaseSize: number;
}
interface DurableObjectListOptions { start?: string; startAfter?: string; end?: string; prefix?: string; reverse?: boolean; limit?: number }
interface DurableObjectTransaction {
  get<T = unknown>(key: string): Promise<T | undefined>;
  get<T = unknown>(keys: string[]): Promise<Map<string, T>>;
  put<T>(key: string, value: T): Promise<void>;
  put<T>(entries: Record<string, T>): Promise<void>;
  delete(key: string): Promise<boolean>;
  delete(keys: string[]): Promise<number>;
  list<T = unknown>(options?: DurableObjectListOptions): Promise<Map<string, T>>;
  rollback(): void;
}
interface DurableObjectStorage extends Omit<DurableObjectTransaction, "rollback"> {
  readonly sql: SqlStorage;
  deleteAll(): Promise<void>;
  transaction<T>(closure: (txn: DurableObjectTransaction) => Promise<T>): Promise<T>;
  transactionSync<T>(closure: () => T): T;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number | Date): Promise<void>;
  deleteAlarm(): Promise<void>;
  sync(): Promise<void>;
}
interface DurableObjectId { toString(): string; equals(other: DurableObjectId): boolean; readonly name?: string }
type DurableObjectStub<T = unknown> = Fetcher & { readonly id: DurableObjectId; readonly name?: string } & (unknown extends T ? { [method: string]: (...args: any[]) => Promise<any> } : { [K in Exclude<keyof T, "fetch" | "alarm">]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never });
interface DurableObjectNamespace<T = unknown> {
  idFromName(name: string): DurableObjectId;
  newUniqueId(): DurableObjectId;
  idFromString(id: string): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub<T>;
  getByName(name: string): DurableObjectStub<T>;
}
/** mayfly's facets: a child actor from code (see the README). */
interface DurableObjectFacets {
  get<T = unknown>(name: string, getStartupOptions: () => { code?: { mainModule: string; modules: Record<string, unknown>; compatibilityDate?: string }; className?: string; env?: Record<string, unknown> } | Promise<{ code?: { mainModule: string; modules: Record<string, unknown> }; className?: string; env?: Record<string, unknown> }>): DurableObjectStub<T>;
  abort(name: string, reason?: unknown): void;
  delete(name: string): Promise<void>;
  list(): Promise<string[]>;
}
interface DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  readonly facets: DurableObjectFacets;
  waitUntil(promise: Promise<unknown>): void;
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
}

declare module "mayfly:agents" {
  import { DurableObject } from "cloudflare:workers";
  export abstract class Agent<Env = unknown> extends DurableObject<Env> {
    subAgent<T = unknown>(cls: abstract new (...args: any[]) => T, name: string): DurableObjectStub<T>;
    subAgent<T = unknown>(name: string): DurableObjectStub<T>;
    listSubAgents(): Promise<string[]>;
    abortSubAgent(name: string, reason?: unknown): void;
    deleteSubAgent(name: string): Promise<void>;
    parentAgent<T = unknown>(): DurableObjectStub<T>;
  }
}

/** mayfly's browser binding (bindings/browser): pages shaped like Cloudflare's Browser Rendering. */
interface MayflyBrowser {
  newPage(): Promise<MayflyBrowserPage>;
}
interface MayflyBrowserPage {
  goto(url: string | URL, options?: { waitUntil?: "load" | "domcontentloaded" | "networkidle" | "commit"; timeout?: number }): Promise<{ status: number; url: string } | null>;
  content(): Promise<string>;
  title(): Promise<string>;
  url(): Promise<string>;
  screenshot(options?: { type?: "png" | "jpeg"; quality?: number; fullPage?: boolean; omitBackground?: boolean }): Promise<Uint8Array>;
  pdf(options?: { format?: string; landscape?: boolean; printBackground?: boolean; scale?: number }): Promise<Uint8Array>;
  evaluate<R, A extends unknown[] = []>(fn: ((...args: A) => R) | string, ...args: A): Promise<Awaited<R>>;
  click(selector: string, options?: { timeout?: number }): Promise<void>;
  type(selector: string, text: string, options?: { timeout?: number }): Promise<void>;
  waitForSelector(selector: string, options?: { state?: "attached" | "detached" | "visible" | "hidden"; timeout?: number }): Promise<boolean>;
  cdp(method: string, params?: Record<string, unknown>): Promise<any>;
  close(): Promise<void>;
}

declare module "cloudflare:workers" {
  export abstract class WorkerEntrypoint<Env = unknown, Props = unknown> {
    protected ctx: ExecutionContext<Props>;
    protected env: Env;
    constructor(ctx: ExecutionContext<Props>, env: Env);
    fetch?(request: Request): Response | Promise<Response>;
    scheduled?(controller: ScheduledController): void | Promise<void>;
  }
  export abstract class DurableObject<Env = unknown> {
    protected ctx: DurableObjectState;
    protected env: Env;
    constructor(ctx: DurableObjectState, env: Env);
    fetch?(request: Request): Response | Promise<Response>;
    alarm?(alarmInfo?: { retryCount: number; isRetry: boolean }): void | Promise<void>;
  }
  export abstract class WorkflowEntrypoint<Env = unknown> {
    protected ctx: ExecutionContext;
    protected env: Env;
    constructor(ctx: ExecutionContext, env: Env);
  }
  export class RpcTarget {}
  export const env: Record<string, unknown>;
}
`;
