/**
 * `mayfly serve --watch`: named workers are rebuilt when a file that went into them (or the config
 * file) changes. The new set replaces the old one in place, so the next request runs the new code (a
 * warm worker's id carries its code's hash: the old instance idles out); a build that fails is logged
 * and the previous workers keep serving.
 */
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "pino";
import type { NamedWorker } from "./named-workers.ts";

export interface WatchOptions {
  /** The served set, replaced in place on each successful rebuild. */
  workers: Map<string, NamedWorker>;
  /** Builds the set anew (re-reading the config file when there is one). */
  rebuild: () => Map<string, NamedWorker>;
  /** Watched besides the workers' own inputs (the config file). */
  extraFiles?: string[];
  log?: Logger;
  /** Called after each successful rebuild (e.g. to reschedule Cron Triggers). */
  onReload?: () => void;
  /** Changes arriving within this time are one rebuild (default 50 ms: editors write in steps). */
  debounceMs?: number;
}

export function watchNamedWorkers(opts: WatchOptions): { close(): void; reloads(): number } {
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let reloads = 0;
  const files = () => new Set([...opts.extraFiles ?? [], ...[...opts.workers.values()].flatMap((w) => w.inputs)]);
  const arm = () => {
    for (const w of watchers) w.close();
    watchers = [...files()].flatMap((file) => {
      try {
        // A rename (how many editors save) ends a watch on the old inode: re-arm after every rebuild.
        return [watch(file, { persistent: false }, schedule)];
      } catch {
        return []; // deleted meanwhile: the rebuild reports it
      }
    });
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, opts.debounceMs ?? 50);
  };
  const reload = () => {
    let next: Map<string, NamedWorker>;
    try {
      next = opts.rebuild();
    } catch (e) {
      opts.log?.error({ err: (e as Error).message }, "reload failed; the previous workers keep serving");
      arm();
      return;
    }
    opts.workers.clear();
    for (const [name, w] of next) opts.workers.set(name, w);
    reloads++;
    opts.onReload?.();
    opts.log?.info({ workers: [...next.keys()] }, "reloaded");
    arm();
  };
  arm();
  return {
    close: () => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
    reloads: () => reloads,
  };
}
