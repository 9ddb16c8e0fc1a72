/**
 * A workspace's change events: the changes its own writes made (announced as they commit) and, where
 * the storage can tell that another host wrote (PostgreSQL's LISTEN/NOTIFY), the changes read back
 * from changesSince(). Each version is announced once, whichever way it arrived first.
 */
import type { Change, WorkspaceStore } from "./store.ts";

/** Versions remembered as announced: enough to cover a burst between two catch-ups. */
const SEEN_KEPT = 10_000;

export class ChangeFeed {
  private readonly store: WorkspaceStore;
  private readonly emit: (change: Change) => void;
  private readonly seen = new Set<number>();
  /** The last version read back from the store; undefined until following starts. */
  private cursor: Promise<number> | undefined;
  private unsubscribe: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(store: WorkspaceStore, emit: (change: Change) => void) {
    this.store = store;
    this.emit = emit;
  }

  announce(change: Change): void {
    if (this.seen.has(change.version)) return;
    this.seen.add(change.version);
    // A Set iterates in insertion order: the first are the oldest.
    if (this.seen.size > SEEN_KEPT) for (const v of this.seen) if (this.seen.delete(v) && this.seen.size <= SEEN_KEPT / 2) break;
    try {
      this.emit(change);
    } catch (e) {
      // The write is committed whatever a listener does; its failure is reported, not thrown at the writer.
      process.emitWarning(`A workspace change listener threw: ${(e as Error)?.message ?? e}`);
    }
  }

  /** Starts following other hosts' changes, where the store can tell of them. */
  follow(): void {
    if (this.unsubscribe || !this.store.subscribe) return;
    this.cursor = this.store.version();
    this.cursor.catch(() => {});
    this.unsubscribe = this.store.subscribe(() => void this.catchUp());
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Reads back what changed since the cursor; one read at a time, another queued if asked meanwhile. */
  private async catchUp(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          let from = await this.cursor!;
          for (;;) {
            const { changes } = await this.store.changesSince(from, 1000);
            for (const change of changes) this.announce(change);
            if (changes.length > 0) from = changes.at(-1)!.version;
            this.cursor = Promise.resolve(from);
            if (changes.length < 1000) break;
          }
        } catch (e) {
          process.emitWarning(`Could not read a workspace's changes from its storage: ${(e as Error)?.message ?? e}`);
          // A cursor that never arrived (storage down when following began) is asked for again.
          const cursor = this.cursor!.catch(() => this.store.version());
          cursor.catch(() => {});
          this.cursor = cursor;
        }
      } while (this.again && this.unsubscribe);
    })();
    await this.running;
    this.running = undefined;
  }
}
