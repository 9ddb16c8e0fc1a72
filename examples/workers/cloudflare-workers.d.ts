// The part of Cloudflare's `cloudflare:workers` types the example workers use, so `npm run typecheck`
// checks them (in a real project, @cloudflare/workers-types provides these).
declare module "cloudflare:workers" {
  export interface SqlStorageCursor<T> extends Iterable<T> {
    toArray(): T[];
    one(): T;
    raw(): IterableIterator<unknown[]>;
    readonly rowsRead: number;
    readonly rowsWritten: number;
  }
  export interface DurableObjectStorage {
    sql: { exec<T = Record<string, unknown>>(query: string, ...bindings: unknown[]): SqlStorageCursor<T> };
    get<T = unknown>(key: string): Promise<T | undefined>;
    put(key: string, value: unknown): Promise<void>;
    delete(key: string): Promise<boolean>;
    setAlarm(time: number | Date): Promise<void>;
  }
  export interface DurableObjectState {
    readonly id: { toString(): string; readonly name?: string };
    readonly storage: DurableObjectStorage;
    blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
  }
  export type DurableObjectStub<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never } & {
    fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  };
  export interface DurableObjectNamespace<T> {
    idFromName(name: string): { toString(): string };
    getByName(name: string): DurableObjectStub<T>;
  }
  export abstract class DurableObject<Env = unknown> {
    protected readonly ctx: DurableObjectState;
    protected readonly env: Env;
    constructor(ctx: DurableObjectState, env: Env);
  }
}
