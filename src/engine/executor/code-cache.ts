import ivm from "isolated-vm";

/**
 * V8 code caches of large classic scripts (the npm bundle of a worker's dependencies), by the content
 * hash the host computed, for this executor process. Compiling zod and date-fns (~900 KB) took ~13 ms
 * in every fresh isolate; from the cache, ~1 ms. isolated-vm consumes cached data for scripts only (its
 * compileModule ignores it), which is why the bundle is a script and not a module. Least recently used
 * entries go first past `maxEntries` or `maxBytes`.
 */
export class CodeCache {
  private readonly entries = new Map<string, { data: ivm.ExternalCopy<ArrayBuffer>; size: number }>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;

  constructor(maxEntries = 64, maxBytes = 64 * 1024 * 1024) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
  }

  /** Compiles `source` in `isolate`, from the cached data for `hash` when there is any, else producing it. */
  compile(isolate: ivm.Isolate, source: string, filename: string, hash: string): ivm.Script {
    const cached = this.entries.get(hash);
    if (cached) {
      this.entries.delete(hash);
      this.entries.set(hash, cached);
      const script = isolate.compileScriptSync(source, { filename, cachedData: cached.data });
      if (!(script as ivm.Script & { cachedDataRejected?: boolean }).cachedDataRejected) return script;
      this.drop(hash); // made by another V8 or flags: produce it again next time
      return script;
    }
    const script = isolate.compileScriptSync(source, { filename, produceCachedData: true });
    const data = (script as ivm.Script & ivm.CachedDataResult).cachedData;
    // Measured once here: reading an ExternalCopy's size means copying it.
    if (data) this.add(hash, data, data.copy().byteLength);
    return script;
  }

  private add(hash: string, data: ivm.ExternalCopy<ArrayBuffer>, size: number): void {
    this.entries.set(hash, { data, size });
    this.bytes += size;
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  private drop(hash: string): void {
    const entry = this.entries.get(hash);
    if (!entry) return;
    this.entries.delete(hash);
    this.bytes -= entry.size;
    entry.data.release();
  }
}
