/** The sandbox binding's options and an exec's options, checked as the other bindings check theirs. */
import { isAbsolute, posix } from "node:path";
import { Workspace } from "../workspace/index.ts";
import { EgressGateway } from "../egress/gateway.ts";
import type { EgressPolicy } from "../egress/policy.ts";

export interface SandboxLimits {
  /** CPU time of the command's whole process tree, in ms (default: none beyond wallMs). */
  cpuMs?: number;
  /** Memory of the whole tree, in MiB (default 256). */
  memoryMb?: number;
  /** Processes (and threads) alive at once in the tree (default 64). */
  processes?: number;
  /** Largest file the command may write, in MiB (default 64). */
  fileSizeMb?: number;
  /** Wall-clock time of one exec, in ms (default 30 s); an exec's timeoutMs may only lower it. */
  wallMs?: number;
}

export interface SandboxOptions {
  /** The Tier-0 workspace shown read-write at /workspace (read-only if the workspace's mode is "read"). */
  workspace: Workspace;
  /** A directory shown read-only as `/` (default: the host's /usr, /bin, /sbin, /lib*, /etc, read-only). */
  rootfs?: string;
  /**
   * Network access (default none): an egress gateway, or a policy to make one, reached only through
   * an HTTP(S) proxy the sandbox finds in HTTP_PROXY/HTTPS_PROXY (see proxy.ts).
   */
  network?: EgressGateway | EgressPolicy | null;
  limits?: SandboxLimits;
  /** Bytes of stdout, and of stderr, kept per exec; the rest is dropped and flagged (default 1 MiB). */
  maxOutputBytes?: number;
  /** Bytes of files in /workspace after a command that are written back at most (default 512 MiB; past it, ENOSPC and nothing is written). */
  maxWriteBackBytes?: number;
  /**
   * What a request the egress gateway refuses does to the command (with a network grant): "stop"
   * (default) kills its whole tree at once and the exec fails with EgressDeniedError naming the rule,
   * nothing written back; "report" answers the request 403 and lists it in `egressRefused`, so a
   * command that can live with a refusal goes on.
   */
  onEgressRefused?: "stop" | "report";
  /** Environment variables every command gets (besides PATH, HOME=/tmp, LANG). */
  env?: Record<string, string>;
  /** The uid/gid the sandbox runs as when the host process is root (default 65534, "nobody"). */
  runAs?: number;
  /**
   * Where each exec's copy of the workspace is made (default the OS temporary directory). The sandbox's
   * user must be able to reach it, and it should be on a disk that can take the workspace.
   */
  tmpDir?: string;
  /** The bubblewrap executable (default "bwrap", found on PATH). */
  bwrap?: string;
}

export interface ExecOptions {
  /** Bytes (or UTF-8 text) written to the command's stdin. */
  stdin?: string | Uint8Array;
  /** Wall-clock limit of this exec, in ms, at most the sandbox's wallMs. */
  timeoutMs?: number;
  /** Working directory: relative to /workspace, or an absolute path inside the sandbox (default /workspace). */
  cwd?: string;
  /** Extra environment variables for this command. */
  env?: Record<string, string>;
}

export const DEFAULT_SANDBOX_LIMITS = { memoryMb: 256, processes: 64, fileSizeMb: 64, wallMs: 30_000 } as const;

const BOUNDS: Record<keyof SandboxLimits, [number, number]> = {
  cpuMs: [1, 24 * 3600_000], memoryMb: [8, 1024 * 1024], processes: [1, 100_000], fileSizeMb: [1, 1024 * 1024], wallMs: [1, 24 * 3600_000],
};

export function checkOptions(o: SandboxOptions): SandboxOptions {
  if (!(o?.workspace instanceof Workspace)) throw new TypeError("sandbox() needs a workspace (from workspace()).");
  if (o.rootfs !== undefined && !(typeof o.rootfs === "string" && isAbsolute(o.rootfs))) throw new TypeError("sandbox() rootfs must be an absolute directory path.");
  if (o.network !== undefined && o.network !== null && !(o.network instanceof EgressGateway) && !Array.isArray((o.network as EgressPolicy).allow)) {
    throw new TypeError("sandbox() network must be null, an egress gateway, or an egress policy ({ allow: [...] }).");
  }
  for (const [k, v] of Object.entries(o.limits ?? {})) {
    const bounds = BOUNDS[k as keyof SandboxLimits];
    if (!bounds) throw new TypeError(`sandbox() has no limit "${k}".`);
    if (v === undefined) continue;
    if (!(Number.isInteger(v) && v >= bounds[0] && v <= bounds[1])) throw new RangeError(`sandbox() limits.${k} must be an integer from ${bounds[0]} to ${bounds[1]}.`);
  }
  if (o.maxOutputBytes !== undefined && !(Number.isInteger(o.maxOutputBytes) && o.maxOutputBytes >= 0)) throw new RangeError("sandbox() maxOutputBytes must be an integer of at least 0.");
  if (o.maxWriteBackBytes !== undefined && !(Number.isInteger(o.maxWriteBackBytes) && o.maxWriteBackBytes >= 0)) throw new RangeError("sandbox() maxWriteBackBytes must be an integer of at least 0.");
  if (o.runAs !== undefined && !(Number.isInteger(o.runAs) && o.runAs > 0)) throw new RangeError("sandbox() runAs must be a uid above 0.");
  if (o.onEgressRefused !== undefined && o.onEgressRefused !== "stop" && o.onEgressRefused !== "report") throw new TypeError('sandbox() onEgressRefused must be "stop" or "report".');
  if (o.tmpDir !== undefined && !(typeof o.tmpDir === "string" && isAbsolute(o.tmpDir))) throw new TypeError("sandbox() tmpDir must be an absolute directory path.");
  if (o.bwrap !== undefined && typeof o.bwrap !== "string") throw new TypeError("sandbox() bwrap must be a path.");
  checkEnv(o.env, "sandbox() env");
  return o;
}

/** An exec's arguments as they came from a worker (by copy, so anything): checked, with defaults. */
export function checkExec(command: unknown, args: unknown, options: unknown, wallMs: number): { command: string; args: string[]; stdin: Uint8Array | undefined; wallMs: number; cwd: string; env: Record<string, string> } {
  if (typeof command !== "string" || command === "" || command.includes("\0")) throw new TypeError("exec() needs a command name or path.");
  const list = args ?? [];
  if (!Array.isArray(list) || !list.every((a) => typeof a === "string" && !a.includes("\0"))) throw new TypeError("exec() args must be an array of strings.");
  const o = (options ?? {}) as ExecOptions;
  if (typeof o !== "object") throw new TypeError("exec() options must be an object.");
  let stdin: Uint8Array | undefined;
  if (typeof o.stdin === "string") stdin = Buffer.from(o.stdin, "utf8");
  else if (o.stdin instanceof Uint8Array) stdin = o.stdin;
  else if (o.stdin !== undefined) throw new TypeError("exec() stdin must be a string or a Uint8Array.");
  if (o.timeoutMs !== undefined && !(typeof o.timeoutMs === "number" && o.timeoutMs > 0)) throw new RangeError("exec() timeoutMs must be a positive number.");
  if (o.cwd !== undefined && (typeof o.cwd !== "string" || o.cwd.includes("\0"))) throw new TypeError("exec() cwd must be a path.");
  checkEnv(o.env, "exec() env");
  return {
    command, args: list as string[], stdin,
    wallMs: Math.min(wallMs, o.timeoutMs ?? Infinity),
    cwd: posix.resolve("/workspace", o.cwd ?? "."),
    env: o.env ?? {},
  };
}

function checkEnv(env: unknown, what: string): void {
  if (env === undefined) return;
  if (typeof env !== "object" || env === null) throw new TypeError(`${what} must map names to strings.`);
  for (const [k, v] of Object.entries(env)) {
    // A name with "=" or a NUL would set some other variable than the one written.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || typeof v !== "string" || v.includes("\0")) throw new TypeError(`${what} must map names to strings (${JSON.stringify(k)} does not).`);
  }
}
