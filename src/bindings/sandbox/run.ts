/**
 * Runs one bwrap command line under its limits and reports how it ended. The chain is
 * `sh` (joins the cgroup while still privileged) → `prlimit` (rlimits) → `setpriv` (drops to the
 * sandbox's user, when the host runs as root) → `bwrap` → the command; each step execs the next, so
 * one pid carries them all, started as the leader of its own process group. Which limit ended a run
 * is read from the kernel: the cgroup's OOM-kill and refused-fork counters, its CPU time, and the
 * signals rlimits send (SIGXCPU, SIGXFSZ), which bwrap passes on as 128 + signal.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { constants } from "node:os";
import { SandboxLimitError } from "../../errors.ts";
import { createCgroup, type Cgroup } from "./cgroup.ts";
import { startForwarder } from "./forwarder.ts";
import type { Readable, Writable } from "node:stream";
import type { SandboxLimits } from "./options.ts";

export interface RunPlan {
  bwrapPath: string;
  bwrapArgs: string[];
  env: Record<string, string>;
  stdin: Uint8Array | undefined;
  limits: Required<Omit<SandboxLimits, "cpuMs">> & { cpuMs: number | undefined };
  /** When the run is stopped: the smaller of the exec's timeout and the wall limit. */
  wallMs: number;
  maxOutputBytes: number;
  /** The uid (and gid) the sandbox runs as; undefined: the host process's own. */
  runAs: number | undefined;
  /** With a network: the host proxy's unix socket, bridged into the sandbox (forwarder.ts); bwrapArgs must carry --info-fd 3 --block-fd 4. */
  proxySocket?: string;
  /** A seccomp program for the command (seccomp.ts); bwrapArgs must carry --seccomp 5. */
  seccomp?: Uint8Array;
  /** Takes the command's stdout as it comes (streamed output); the result's stdout is then empty. */
  stdoutTo?: (stdout: Readable) => void;
  /** Ends the run (its whole tree killed) and rejects with the signal's reason: an egress refusal. */
  signal?: AbortSignal;
}

export interface RunResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

type Limit = "cpuMs" | "memoryMb" | "processes" | "fileSizeMb" | "wallMs";

const SIGXCPU_EXIT = 128 + 24;
const SIGXFSZ_EXIT = 128 + 25;
/** How often the cgroup's counters are read while a command runs. */
const POLL_MS = 50;
/** Joins each cgroup named by the first `$1` arguments, then execs the rest. */
const JOIN = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';

/** Runs the command; resolves to its exit, or rejects with SandboxLimitError once its tree is killed. */
export async function runSandboxed(plan: RunPlan): Promise<RunResult> {
  const { limits } = plan;
  const cgroup = createCgroup({ memoryBytes: limits.memoryMb * 2 ** 20, processes: limits.processes });
  try {
    return await runIn(plan, cgroup);
  } finally {
    await cgroup?.remove();
  }
}

function runIn(plan: RunPlan, cgroup: Cgroup | undefined): Promise<RunResult> {
  const { limits } = plan;
  const prlimit = ["prlimit", "--core=0", `--fsize=${limits.fileSizeMb * 2 ** 20}`];
  if (limits.cpuMs !== undefined) {
    const s = Math.ceil(limits.cpuMs / 1000);
    prlimit.push(`--cpu=${s}:${s + 1}`);
  }
  // Address space is a poor proxy for memory (runtimes reserve far more than they use), so it is the
  // fallback only: with a memory cgroup, resident memory is what is limited.
  if (!cgroup?.enforces.memory) prlimit.push(`--as=${limits.memoryMb * 2 ** 20}`);
  // RLIMIT_NPROC counts every process of the user on the host, so it is used only for a dedicated
  // sandbox user, and only when no pids cgroup does the job precisely.
  if (!cgroup?.enforces.processes && plan.runAs !== undefined) prlimit.push(`--nproc=${limits.processes}`);
  prlimit.push("--");
  const drop = plan.runAs === undefined ? [] : ["setpriv", `--reuid=${plan.runAs}`, `--regid=${plan.runAs}`, "--clear-groups", "--"];
  const procs = cgroup?.procsFiles ?? [];
  const argv = ["-c", JOIN, "sh", String(procs.length), ...procs, ...prlimit, ...drop, plan.bwrapPath, ...plan.bwrapArgs];

  return new Promise((resolve, reject) => {
    // fds 3 and 4: bwrap's info and block pipes (with a network); fd 5: the seccomp program.
    const extra = plan.proxySocket ? "pipe" : "ignore";
    const child = spawn("/bin/sh", argv, { env: plan.env, stdio: ["pipe", "pipe", "pipe", extra, extra, plan.seccomp ? "pipe" : "ignore"], detached: true }) as ChildProcessWithoutNullStreams;
    if (plan.seccomp) {
      const fd5 = (child.stdio as unknown as Writable[])[5]!;
      fd5.on("error", () => {});
      fd5.end(plan.seccomp);
    }
    let stoppedFor: Limit | undefined;
    let failure: Error | undefined;
    let bridge: ReturnType<typeof spawn> | undefined;
    const kill = () => {
      bridge?.kill("SIGKILL");
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch { /* the group is gone already */ }
      cgroup?.killAll();
    };
    const stop = (limit: Limit) => {
      stoppedFor ??= limit;
      kill();
      // Our ends of the pipes too: a stream nobody reads would otherwise keep the run from ending.
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const out = capped(plan.maxOutputBytes);
    const err = capped(plan.maxOutputBytes);
    if (plan.stdoutTo) plan.stdoutTo(child.stdout);
    else child.stdout.on("data", out.push);
    child.stderr.on("data", err.push);
    child.stdin.on("error", () => {}); // a command that does not read its input closes the pipe early
    child.stdin.end(plan.stdin ?? new Uint8Array(0));

    if (plan.proxySocket) {
      // bwrap tells the pid of its child (in the new namespaces) on fd 3, and starts the command only
      // once something is written to fd 4: that is when the bridge listens in its network namespace.
      const info = child.stdio[3] as Readable;
      const block = child.stdio[4] as Writable;
      let text = "";
      let started = false;
      info.on("data", (d: Buffer) => {
        text += d.toString();
        const pid = /"child-pid"\s*:\s*(\d+)/.exec(text)?.[1];
        if (started || pid === undefined) return;
        started = true;
        startForwarder(Number(pid), plan.proxySocket!).then((f) => {
          bridge = f;
          // The run may have ended (its wall limit) while the bridge was starting.
          if (child.exitCode !== null || child.signalCode !== null) return void f.kill("SIGKILL");
          block.end("go");
        }, (e: Error) => {
          failure = e;
          kill();
        });
      });
      info.on("error", () => {});
      block.on("error", () => {});
    }
    const wall = setTimeout(() => stop("wallMs"), plan.wallMs);
    const aborted = () => {
      failure ??= plan.signal!.reason as Error;
      kill();
      child.stdout.destroy();
      child.stderr.destroy();
    };
    if (plan.signal?.aborted) aborted();
    else plan.signal?.addEventListener("abort", aborted, { once: true });
    const poll = cgroup && setInterval(() => {
      if (cgroup.pidsRefused() > 0) stop("processes");
      else if (cgroup.oomKills() > 0) stop("memoryMb");
      else if (limits.cpuMs !== undefined && (cgroup.cpuMs() ?? 0) > limits.cpuMs) stop("cpuMs");
    }, POLL_MS);

    child.on("error", (e) => {
      clearTimeout(wall);
      if (poll) clearInterval(poll);
      reject(e);
    });
    // Whatever the command left behind (it should be nothing: the pid namespace dies with bwrap) goes too.
    child.on("exit", kill);
    child.on("close", (code, signal) => {
      clearTimeout(wall);
      if (poll) clearInterval(poll);
      bridge?.kill("SIGKILL");
      if (failure) return reject(failure);
      const exitCode = code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0);
      const limit = stoppedFor
        ?? (cgroup && cgroup.oomKills() > 0 ? "memoryMb" : undefined)
        ?? (cgroup && cgroup.pidsRefused() > 0 ? "processes" : undefined)
        ?? (exitCode === SIGXCPU_EXIT ? "cpuMs" : exitCode === SIGXFSZ_EXIT ? "fileSizeMb" : undefined);
      if (limit) return reject(new SandboxLimitError(limit, limit === "wallMs" ? plan.wallMs : limits[limit] ?? 0));
      resolve({ exitCode, stdout: out.bytes(), stderr: err.bytes(), stdoutTruncated: out.truncated(), stderrTruncated: err.truncated() });
    });
  });
}

/** Keeps the first `max` bytes of a stream and drops the rest (still reading it, so the writer never blocks). */
function capped(max: number): { push: (chunk: Buffer) => void; bytes: () => Uint8Array; truncated: () => boolean } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let dropped = false;
  return {
    push: (chunk) => {
      const room = max - kept;
      if (chunk.length > room) dropped = true;
      if (room <= 0) return;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(part);
      kept += part.length;
    },
    bytes: () => new Uint8Array(Buffer.concat(chunks, kept)),
    truncated: () => dropped,
  };
}
