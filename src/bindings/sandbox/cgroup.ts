/**
 * A control group per sandboxed command, when the host lets us make one: it is what bounds the
 * memory and the number of processes of the whole tree (rlimits count per process, or per user
 * across the host), what tells us afterwards that the kernel's OOM killer or the pids limit struck,
 * what measures the tree's CPU time, and what lets us kill every process in it. cgroup v2 (a
 * delegated subtree with the memory and pids controllers) or v1 (one directory per controller, as
 * in many containers) are used; where neither can be created, `createCgroup` answers undefined and
 * the caller falls back to rlimits (see limits.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

const ROOT = "/sys/fs/cgroup";

export interface CgroupLimits { memoryBytes: number; processes: number }

export interface Cgroup {
  /** The cgroup.procs files a process writes its pid to, to enter the group (one per v1 hierarchy). */
  procsFiles: string[];
  /** Which limits the kernel enforces for the group. */
  enforces: { memory: boolean; processes: boolean; cpu: boolean };
  /** The group's CPU time so far, in ms (undefined when no CPU accounting is available). */
  cpuMs(): number | undefined;
  /** How often the OOM killer killed a process of the group. */
  oomKills(): number;
  /** How often a fork was refused because the group was at its process limit. */
  pidsRefused(): number;
  /** SIGKILLs every process in the group. */
  killAll(): void;
  /** Kills what is left and removes the group. */
  remove(): Promise<void>;
}

/** A new cgroup below our own, with the limits written; undefined where the host does not allow it. */
export function createCgroup(limits: CgroupLimits): Cgroup | undefined {
  const name = `mayfly-sandbox-${randomBytes(6).toString("hex")}`;
  try {
    return existsSync(join(ROOT, "cgroup.controllers")) ? createV2(name, limits) : createV1(name, limits);
  } catch {
    return undefined;
  }
}

/** Our own cgroup's path in a hierarchy: the v1 controller's line of /proc/self/cgroup, or "0::" for v2. */
function ownPath(controller: string | null): string {
  for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n")) {
    const [, controllers, path] = line.split(":", 3) as [string, string, string];
    if (controller === null ? controllers === "" && line.startsWith("0:") : controllers?.split(",").includes(controller)) return path ?? "/";
  }
  throw new Error(`not in a ${controller ?? "v2"} cgroup`);
}

/**
 * Groups a previous host process left behind (it was killed before removing them; their processes
 * died with bwrap's --die-with-parent) are removed once, when the first group is made. A group with
 * processes cannot be removed (EBUSY), and one younger than a minute may be about to be joined.
 */
const swept = new Set<string>();
function sweep(parent: string): void {
  if (swept.has(parent)) return;
  swept.add(parent);
  try {
    for (const name of readdirSync(parent)) {
      const dir = join(parent, name);
      if (name.startsWith("mayfly-sandbox-") && Date.now() - statSync(dir).mtimeMs > 60_000) tryRmdir(dir);
    }
  } catch { /* nothing to sweep */ }
}

function createV2(name: string, limits: CgroupLimits): Cgroup | undefined {
  sweep(join(ROOT, ownPath(null)));
  const dir = join(ROOT, ownPath(null), name);
  mkdirSync(dir);
  const file = (f: string) => join(dir, f);
  // Only a delegated subtree with these controllers enabled has these files; otherwise give up.
  if (!existsSync(file("memory.max")) || !existsSync(file("pids.max"))) {
    rmdirSync(dir);
    return undefined;
  }
  writeFileSync(file("memory.max"), String(limits.memoryBytes));
  if (existsSync(file("memory.swap.max"))) tryWrite(file("memory.swap.max"), "0");
  writeFileSync(file("pids.max"), String(limits.processes));
  return {
    procsFiles: [file("cgroup.procs")],
    enforces: { memory: true, processes: true, cpu: existsSync(file("cpu.stat")) },
    cpuMs: () => {
      const usec = keyed(file("cpu.stat"), "usage_usec");
      return usec === undefined ? undefined : usec / 1000;
    },
    oomKills: () => keyed(file("memory.events"), "oom_kill") ?? 0,
    pidsRefused: () => keyed(file("pids.events"), "max") ?? 0,
    killAll: () => {
      if (existsSync(file("cgroup.kill"))) tryWrite(file("cgroup.kill"), "1");
      else killPids([file("cgroup.procs")]);
    },
    remove: () => removeDirs([dir], [file("cgroup.procs")]),
  };
}

function createV1(name: string, limits: CgroupLimits): Cgroup | undefined {
  const memory = join(ROOT, "memory", ownPath("memory"), name);
  const pids = join(ROOT, "pids", ownPath("pids"), name);
  for (const controller of ["memory", "pids", "cpuacct"]) {
    try {
      sweep(join(ROOT, controller, ownPath(controller)));
    } catch { /* not mounted */ }
  }
  const made: string[] = [];
  try {
    for (const dir of [memory, pids]) {
      mkdirSync(dir);
      made.push(dir);
    }
    writeFileSync(join(memory, "memory.limit_in_bytes"), String(limits.memoryBytes));
    // Swap counts too where the kernel accounts it (memsw), so the limit is not dodged by swapping.
    if (existsSync(join(memory, "memory.memsw.limit_in_bytes"))) tryWrite(join(memory, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes));
    writeFileSync(join(pids, "pids.max"), String(limits.processes));
  } catch (e) {
    for (const dir of made.reverse()) tryRmdir(dir);
    throw e;
  }
  // CPU accounting is a bonus: a cpuacct hierarchy we can also create a group in.
  let cpuacct: string | undefined;
  try {
    const dir = join(ROOT, "cpuacct", ownPath("cpuacct"), name);
    mkdirSync(dir);
    cpuacct = dir;
  } catch {
    cpuacct = undefined;
  }
  const dirs = [memory, pids, ...(cpuacct ? [cpuacct] : [])];
  const procsFiles = dirs.map((d) => join(d, "cgroup.procs"));
  return {
    procsFiles,
    enforces: { memory: true, processes: true, cpu: cpuacct !== undefined },
    cpuMs: () => (cpuacct ? Number(readFileSync(join(cpuacct, "cpuacct.usage"), "utf8")) / 1e6 : undefined),
    oomKills: () => keyed(join(memory, "memory.oom_control"), "oom_kill") ?? 0,
    pidsRefused: () => keyed(join(pids, "pids.events"), "max") ?? 0,
    killAll: () => killPids(procsFiles),
    remove: () => removeDirs(dirs, procsFiles),
  };
}

/** A "key value" line's value in a cgroup file. */
function keyed(file: string, key: string): number | undefined {
  try {
    const line = readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${key} `));
    return line === undefined ? undefined : Number(line.slice(key.length + 1));
  } catch {
    return undefined;
  }
}

function pidsIn(procsFiles: string[]): number[] {
  const pids = new Set<number>();
  for (const f of procsFiles) {
    try {
      for (const p of readFileSync(f, "utf8").split("\n")) if (p) pids.add(Number(p));
    } catch { /* gone already */ }
  }
  return [...pids];
}

function killPids(procsFiles: string[]): void {
  for (const pid of pidsIn(procsFiles)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* exited meanwhile */ }
  }
}

/** A group can be removed once empty; processes killed a moment ago may take a few ms to leave it. */
async function removeDirs(dirs: string[], procsFiles: string[]): Promise<void> {
  for (let attempt = 0; attempt < 50 && pidsIn(procsFiles).length > 0; attempt++) {
    killPids(procsFiles);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const dir of dirs) tryRmdir(dir);
}

function tryWrite(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch { /* an optional knob this kernel refuses */ }
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch { /* left for the next cleanup; it holds no process */ }
}
