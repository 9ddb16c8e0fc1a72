/**
 * The OS sandbox (Tier 4): real programs (git, a compiler, a shell) run for a worker under
 * bubblewrap, in new namespaces, on a read-only system root, with the worker's workspace as their
 * /workspace and no network. Placed in env (`env: { SH: sandbox({ workspace: ws }) }`) a worker
 * calls `await env.SH.exec("git", ["init"])`; what the command writes under /workspace is in the
 * workspace afterwards, for the next JavaScript run to read. Each exec is a fresh sandbox; execs of
 * one Sandbox run one at a time, since each works on a copy of the whole workspace.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { Readable } from "node:stream";
import { join } from "node:path";
import { SandboxUnavailableError } from "../../errors.ts";
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import type { Workspace } from "../workspace/index.ts";
import { bwrapArgs } from "./bwrap.ts";
import { checkExec, checkOptions, DEFAULT_SANDBOX_LIMITS, type ExecOptions, type SandboxLimits, type SandboxOptions } from "./options.ts";
import { runSandboxed, type RunPlan } from "./run.ts";
import { seccompProgram } from "./seccomp.ts";
import { materialise, writeBack, type SyncReport } from "./sync.ts";
import { egress, EgressGateway } from "../egress/gateway.ts";
import { PROXY_PORT } from "./forwarder.ts";
import { startProxy, type EgressRefusal, type SandboxProxy } from "./proxy.ts";

export type { ExecOptions, SandboxLimits, SandboxOptions } from "./options.ts";
export type { EgressRefusal } from "./proxy.ts";
export type { SyncReport } from "./sync.ts";

export interface ExecResult {
  exitCode: number;
  /** The command's output as UTF-8 text, at most maxOutputBytes each. */
  stdout: string;
  stderr: string;
  /** Set when output past maxOutputBytes was dropped. */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** What the command changed in the workspace (nothing, for a workspace in "read" mode). */
  workspace: SyncReport;
  /** Requests through the proxy the egress gateway refused (each got a 403); empty without a network. */
  egressRefused: EgressRefusal[];
}

const PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

export class Sandbox implements Bindable {
  readonly workspace: Workspace;
  readonly limits: RunPlan["limits"];
  private readonly options: SandboxOptions;
  private readonly gateway: EgressGateway | undefined;
  /** Execs of one sandbox run in turn: each copies the workspace out and commits it back. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: SandboxOptions) {
    this.options = checkOptions(options);
    this.workspace = options.workspace;
    const net = options.network;
    this.gateway = net === undefined || net === null ? undefined : net instanceof EgressGateway ? net : egress(net);
    this.limits = { ...DEFAULT_SANDBOX_LIMITS, cpuMs: undefined, ...definedOnly(options.limits ?? {}) };
  }

  [BINDING](): Capability {
    const runs = new Map<number, Promise<ExecResult>>();
    let lastRun = 0;
    return {
      kind: "sandbox",
      call: async (method, args) => {
        if (method === "exec") return this.exec(args[0] as string, args[1] as string[], args[2] as ExecOptions);
        if (method === "spawn") {
          // The stdout stream crosses as a body the worker reads a chunk at a time; the result is
          // kept for the worker's "wait" on this run's number.
          const { stdout, exited } = this.spawn(args[0] as string, args[1] as string[], args[2] as ExecOptions);
          exited.catch(() => {});
          runs.set(++lastRun, exited);
          return { run: lastRun, body: stdout };
        }
        if (method === "wait") {
          const exited = runs.get(args[0] as number);
          if (!exited) throw new TypeError("No such spawned command (each is waited for once).");
          runs.delete(args[0] as number);
          return exited;
        }
        throw new TypeError(`The sandbox has no method ${method}().`);
      },
    };
  }

  /**
   * Like exec(), with the command's stdout as a stream while it runs (read at the reader's pace: a
   * command whose output is not read waits, up to its wall limit). `exited` settles as exec() does,
   * with stdout empty.
   */
  spawn(command: string, args: string[] = [], options: ExecOptions = {}): { stdout: ReadableStream<Uint8Array>; exited: Promise<ExecResult> } {
    const pipe = new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)),
    });
    const exited = this.execWith(command, args, options, (readable) => {
      void (Readable.toWeb(readable) as ReadableStream<Uint8Array>).pipeTo(pipe.writable).catch(() => {});
    });
    // A command that never started (a refused argument, no sandbox here) ends its stream with the reason.
    exited.catch((e: unknown) => pipe.writable.abort(e).catch(() => {}));
    return { stdout: pipe.readable, exited };
  }

  /** Runs `command` with `args` in a fresh sandbox; resolves to its exit code and output, or rejects with SandboxLimitError. */
  exec(command: string, args: string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    return this.execWith(command, args, options, undefined);
  }

  private async execWith(command: string, args: string[], options: ExecOptions, stdoutTo: RunPlan["stdoutTo"]): Promise<ExecResult> {
    const e = checkExec(command, args, options, this.limits.wallMs);
    const plan = this.plan();
    const availability = await probe(plan.bwrapPath, plan.runAs, this.options.rootfs);
    if (!availability.available) throw new SandboxUnavailableError(availability.reason);
    const turn = this.queue.then(() => this.run(e, plan, stdoutTo));
    this.queue = turn.catch(() => {});
    return turn;
  }

  private plan(): Pick<RunPlan, "bwrapPath" | "runAs"> {
    return { bwrapPath: this.options.bwrap ?? "bwrap", runAs: process.getuid?.() === 0 ? this.options.runAs ?? 65534 : undefined };
  }

  private async run(e: ReturnType<typeof checkExec>, plan: Pick<RunPlan, "bwrapPath" | "runAs">, stdoutTo: RunPlan["stdoutTo"]): Promise<ExecResult> {
    const base = mkdtempSync(join(this.options.tmpDir ?? tmpdir(), "mayfly-sandbox-"));
    let proxy: SandboxProxy | undefined;
    try {
      // The sandbox's user must reach the copy (and nothing else of the host's temporary directory).
      chmodSync(base, 0o711);
      const dir = join(base, "workspace");
      mkdirSync(dir, { mode: 0o700 });
      const writable = this.workspace.mode === "read-write";
      const snapshot = await materialise(this.workspace, dir, plan.runAs);
      const proxySocket = join(base, "proxy.sock");
      // With "stop", the first refused request ends the command (its tree killed, nothing written back).
      const refused = new AbortController();
      const stopOnRefusal = (this.options.onEgressRefused ?? "stop") === "stop";
      if (this.gateway) proxy = await startProxy(this.gateway, proxySocket, (e) => { if (stopOnRefusal && !refused.signal.aborted) refused.abort(e); });
      const seccomp = seccompProgram();
      const proxyUrl = `http://127.0.0.1:${PROXY_PORT}`;
      const proxyEnv: Record<string, string> = proxy ? { HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, http_proxy: proxyUrl, https_proxy: proxyUrl } : {};
      const result = await runSandboxed({
        ...plan,
        ...(proxy ? { proxySocket } : {}),
        ...(stdoutTo ? { stdoutTo } : {}),
        ...(seccomp ? { seccomp } : {}),
        bwrapArgs: bwrapArgs({
          rootfs: this.options.rootfs, tmpMb: this.limits.memoryMb, workspaceDir: dir, workspaceWritable: writable,
          cwd: e.cwd, command: e.command, args: e.args, bridged: !!proxy, seccomp: !!seccomp,
        }),
        env: { PATH, HOME: "/tmp", LANG: "C.UTF-8", ...proxyEnv, ...this.options.env, ...e.env },
        stdin: e.stdin,
        limits: this.limits,
        wallMs: e.wallMs,
        maxOutputBytes: this.options.maxOutputBytes ?? 1024 * 1024,
        signal: refused.signal,
      });
      const workspace = writable ? await writeBack(this.workspace, dir, snapshot, this.options.maxWriteBackBytes ?? 512 * 2 ** 20) : { written: [], deleted: [], skipped: [] };
      const text = new TextDecoder();
      return {
        exitCode: result.exitCode, stdout: text.decode(result.stdout), stderr: text.decode(result.stderr),
        stdoutTruncated: result.stdoutTruncated, stderrTruncated: result.stderrTruncated, workspace, egressRefused: proxy?.refusals ?? [],
      };
    } finally {
      await proxy?.close();
      rmSync(base, { recursive: true, force: true });
    }
  }
}

/** An OS sandbox for a worker's env: `env: { SH: sandbox({ workspace: ws, limits: { memoryMb: 512 } }) }`. */
export function sandbox(options: SandboxOptions): Sandbox {
  return new Sandbox(options);
}

type Availability = { available: true } | { available: false; reason: string };
const probes = new Map<string, Promise<Availability>>();

/**
 * Whether sandboxes can run on this machine (bubblewrap present, namespaces allowed), found by
 * running `true` in one exactly as an exec would; the answer is kept for the process's lifetime.
 */
export function sandboxAvailable(options: Pick<SandboxOptions, "bwrap" | "runAs" | "rootfs"> = {}): Promise<Availability> {
  const runAs = process.getuid?.() === 0 ? options.runAs ?? 65534 : undefined;
  return probe(options.bwrap ?? "bwrap", runAs, options.rootfs);
}

function probe(bwrapPath: string, runAs: number | undefined, rootfs: string | undefined): Promise<Availability> {
  const key = JSON.stringify([bwrapPath, runAs, rootfs]);
  let answer = probes.get(key);
  if (!answer) {
    answer = tryRun(bwrapPath, runAs, rootfs);
    probes.set(key, answer);
  }
  return answer;
}

async function tryRun(bwrapPath: string, runAs: number | undefined, rootfs: string | undefined): Promise<Availability> {
  const base = mkdtempSync(join(tmpdir(), "mayfly-sandbox-probe-"));
  try {
    chmodSync(base, 0o755);
    const seccomp = seccompProgram();
    const r = await runSandboxed({
      bwrapPath, runAs, env: { PATH }, stdin: undefined, maxOutputBytes: 4096, wallMs: 10_000,
      limits: { ...DEFAULT_SANDBOX_LIMITS, cpuMs: undefined },
      ...(seccomp ? { seccomp } : {}),
      bwrapArgs: bwrapArgs({ rootfs, tmpMb: 16, workspaceDir: base, workspaceWritable: false, cwd: "/", command: "true", args: [], seccomp: !!seccomp }),
    });
    if (r.exitCode === 0) return { available: true };
    const why = new TextDecoder().decode(r.stderr).trim();
    return { available: false, reason: r.exitCode === 127 ? `bubblewrap (${bwrapPath}), prlimit or setpriv was not found` : `bubblewrap failed (exit ${r.exitCode}): ${why || "no message"}` };
  } catch (e) {
    return { available: false, reason: `bubblewrap could not be started: ${(e as Error).message}` };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

function definedOnly(limits: SandboxLimits): SandboxLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}
