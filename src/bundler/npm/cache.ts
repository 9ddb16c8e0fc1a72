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
  constructor(dir: string) {
    this.dir = dir;
  }

  async get<T>(kind: string, hash: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.path(kind, hash), "utf8")) as T;
    } catch {
      return undefined;
    }
  }

  async set(kind: string, hash: string, value: unknown): Promise<void> {
    const path = this.path(kind, hash);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify(value));
    await rename(tmp, path);
  }

  private path(kind: string, hash: string): string {
    return join(this.dir, kind, `${hash}.json`);
  }
}
