import { createHash, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** A stable content hash of a JSON value (object keys sorted, so equal content hashes equally). */
export function contentHash(value: unknown): string {
  return createHash("sha256").update(canonical(value)).digest("hex").slice(0, 40);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/**
 * JSON files on disk under `<cacheDir>/<kind>/<hash>.json`, written to a temporary name and renamed,
 * so a reader sees a whole entry or none. A corrupt entry reads as a miss and is rebuilt.
 */
export class DiskCache {
  readonly dir: string;
  /**
   * The most recently used entries, parsed, so loading the same code again (a /v1/run per request)
   * skips reading and parsing a bundle of up to megabytes. Bounded by count and by text size.
   */
  readonly #memory = new Map<string, { value: unknown; size: number }>();
  #memoryBytes = 0;
  static readonly MAX_ENTRIES = 64;
  static readonly MAX_BYTES = 64 * 1024 * 1024;

  constructor(dir: string) {
    this.dir = dir;
  }

  async get<T>(kind: string, hash: string): Promise<T | undefined> {
    const key = `${kind}/${hash}`;
    const hit = this.#memory.get(key);
    if (hit) {
      this.#memory.delete(key);
      this.#memory.set(key, hit);
      return hit.value as T;
    }
    try {
      const text = await readFile(this.path(kind, hash), "utf8");
      const value = JSON.parse(text) as T;
      this.#remember(key, value, text.length);
      return value;
    } catch {
      return undefined;
    }
  }

  #remember(key: string, value: unknown, size: number): void {
    this.#memory.set(key, { value, size });
    this.#memoryBytes += size;
    for (const [k, e] of this.#memory) {
      if (this.#memory.size <= DiskCache.MAX_ENTRIES && this.#memoryBytes <= DiskCache.MAX_BYTES) break;
      this.#memory.delete(k);
      this.#memoryBytes -= e.size;
    }
  }

  async set(kind: string, hash: string, value: unknown): Promise<void> {
    const path = this.path(kind, hash);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomUUID()}.tmp`;
    const text = JSON.stringify(value);
    await writeFile(tmp, text);
    await rename(tmp, path);
    this.#remember(`${kind}/${hash}`, value, text.length);
  }

  private path(kind: string, hash: string): string {
    return join(this.dir, kind, `${hash}.json`);
  }
}
