/**
 * A worker's large scripts (its npm bundle, ~800 KB for zod and date-fns) cross to an executor once,
 * not with every fresh request: each copy cost ~1-1.5 ms of serialising on the host and parsing in the
 * executor. The host decides what each executor holds (ScriptsSent) and tells it what to forget, so
 * the two never disagree: frames on one IPC channel arrive in order, and a "forget" is sent before the
 * call that made room. A call then carries such a script's hash with empty content, which the
 * executor fills back in (ScriptsHeld).
 */
import type { WorkerSpec } from "./protocol.ts";

/** Script bytes one executor holds at most; the least recently used go first past it. */
const MAX_BYTES = 64 * 1024 * 1024;

/** Host side, one per executor process. */
export class ScriptsSent {
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  /**
   * The spec to send (scripts the executor holds emptied), and the hashes the executor must forget
   * first to keep within its budget.
   */
  prepare(spec: WorkerSpec): { spec: WorkerSpec; forget: string[] } {
    if (!spec.modules.some((m) => m.type === "script" && m.hash)) return { spec, forget: [] };
    const current = new Set<string>();
    let changed = false;
    const modules = spec.modules.map((m) => {
      if (m.type !== "script" || !m.hash || typeof m.content !== "string") return m;
      current.add(m.hash);
      const size = this.sizes.get(m.hash);
      if (size !== undefined) {
        this.sizes.delete(m.hash);
        this.sizes.set(m.hash, size); // most recently used last
        changed = true;
        return { ...m, content: "" };
      }
      this.sizes.set(m.hash, m.content.length);
      this.bytes += m.content.length;
      return m;
    });
    const forget: string[] = [];
    for (const [hash, size] of this.sizes) {
      if (this.bytes <= MAX_BYTES) break;
      if (current.has(hash)) continue;
      this.sizes.delete(hash);
      this.bytes -= size;
      forget.push(hash);
    }
    return { spec: changed ? { ...spec, modules } : spec, forget };
  }
}

/** Executor side: the sources the host sent, by hash, until it says to forget them. */
export class ScriptsHeld {
  private readonly sources = new Map<string, string>();

  /** Keeps the scripts that came with content and fills in those that came without. */
  restore(spec: WorkerSpec): WorkerSpec {
    if (!spec.modules.some((m) => m.type === "script" && m.hash)) return spec;
    const modules = spec.modules.map((m) => {
      if (m.type !== "script" || !m.hash) return m;
      if (m.content !== "") {
        this.sources.set(m.hash, m.content as string);
        return m;
      }
      const source = this.sources.get(m.hash);
      if (source === undefined) throw new Error(`The host sent script ${m.name} by hash ${m.hash}, which this executor does not hold.`);
      return { ...m, content: source };
    });
    return { ...spec, modules };
  }

  forget(hashes: readonly string[]): void {
    for (const h of hashes) this.sources.delete(h);
  }
}
