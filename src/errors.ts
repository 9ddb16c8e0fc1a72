/**
 * Every error mayfly raises is a class with a stable `name`, so callers can match on
 * `err.name` (or `instanceof`) without parsing messages.
 */

export class MayflyError extends Error {
  override name = "MayflyError";
}

/** The WorkerCode passed to `load()`/`get()` is malformed. Thrown synchronously, nothing is started. */
export class InvalidWorkerCodeError extends MayflyError {
  override name = "InvalidWorkerCodeError";
}

/** A value in `env` (or an RPC argument) cannot cross the isolate boundary by structured clone. */
export class DataCloneError extends MayflyError {
  override name = "DataCloneError";
}

/** Base of the limit errors: the run was ended because it used more than its budget. */
export class LimitError extends MayflyError {
  override name = "LimitError";
  /** Which limit, as in `WorkerCode.limits`. */
  readonly limit: string;
  constructor(limit: string, message: string) {
    super(message);
    this.limit = limit;
  }
}

export class CpuTimeLimitError extends LimitError {
  override name = "CpuTimeLimitError";
  constructor(limitMs: number) {
    super("cpuMs", `Worker exceeded CPU time limit of ${limitMs} ms.`);
  }
}

export class WallTimeLimitError extends LimitError {
  override name = "WallTimeLimitError";
  constructor(limitMs: number) {
    super("wallMs", `Worker exceeded wall-clock time limit of ${limitMs} ms.`);
  }
}

export class MemoryLimitError extends LimitError {
  override name = "MemoryLimitError";
  constructor(limitMb: number, detail?: string) {
    super("memoryMb", `Worker exceeded memory limit of ${limitMb} MB${detail ? ` (${detail})` : ""}.`);
  }
}

export class OutputLimitError extends LimitError {
  override name = "OutputLimitError";
  constructor(what: string, limitBytes: number) {
    super("output", `Worker exceeded ${what} limit of ${limitBytes} bytes.`);
  }
}

/** The executor process hosting the run died (guest abort, OOM, SIGKILL). Other runs are unaffected. */
export class ExecutorCrashedError extends MayflyError {
  override name = "ExecutorCrashedError";
}

/** A storage binding's quota (bytes, keys, rows) would be exceeded; the write did not happen. */
/** A shared storage backend (PostgreSQL, S3) could not be reached: the operation was not acknowledged. */
export class BackendUnavailableError extends MayflyError {
  override name = "BackendUnavailableError";
}

export class QuotaExceededError extends MayflyError {
  override name = "QuotaExceededError";
}

/**
 * A replicated SQLite write (D1 on PostgreSQL, an actor's storage) kept losing the race to append
 * to its database's log: other hosts wrote first every time it retried. Nothing of it was written.
 */
export class ReplicaConflictError extends MayflyError {
  override name = "ReplicaConflictError";
}

/**
 * A SQLite replica cannot take the next log entry (a gap, or a changeset that conflicts with its
 * rows: the file was changed behind its back). Nothing was applied; the replica must be rebuilt from
 * the log (`materialize`), which ReplicatedSqlite does by itself.
 */
export class ReplicaOutOfStepError extends MayflyError {
  override name = "ReplicaOutOfStepError";
}

/** The loader (or a stub) was closed or disposed while a call was waiting on it. */
export class WorkerDisposedError extends MayflyError {
  override name = "WorkerDisposedError";
}

/**
 * An error thrown by guest code, carried across the boundary by name and message only
 * (no host stack, no host paths). `remote` is always true, as on Cloudflare.
 */
export interface RemoteErrorShape {
  name: string;
  message: string;
  stack?: string;
}

export function remoteError(shape: RemoteErrorShape): Error {
  const ctor = errorConstructorFor(shape.name);
  const err = new ctor(shape.message);
  if (err.name !== shape.name) Object.defineProperty(err, "name", { value: shape.name, configurable: true, writable: true });
  Object.defineProperty(err, "remote", { value: true, enumerable: true });
  if (shape.stack) err.stack = shape.stack;
  return err;
}

const builtinErrors: Record<string, ErrorConstructor> = {
  TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
};

function errorConstructorFor(name: string): ErrorConstructor {
  return Object.hasOwn(builtinErrors, name) ? builtinErrors[name]! : Error;
}

/**
 * A call into a durable actor, facet or sub-agent ended because the actor was aborted
 * (`facets.abort()`, `abortSubAgent()`, `namespace.abort(id)`) while the call was in flight.
 */
export class ActorAbortedError extends MayflyError {
  override name = "ActorAbortedError";
}

/** A configuration file (mayfly.config.json) is missing, malformed, or names something that is not there. */
export class ConfigError extends MayflyError {
  override name = "ConfigError";
}

/**
 * A WorkerCode carries `packageJson` but its WorkerLoader was not granted npm (`new WorkerLoader({ npm })`).
 * Thrown synchronously by `load()`, like any other code this loader cannot run.
 */
export class NpmNotEnabledError extends InvalidWorkerCodeError {
  override name = "NpmNotEnabledError";
}

/** Base of the errors of npm dependencies, resolved and bundled on the host before the first call. */
export class PackageError extends MayflyError {
  override name = "PackageError";
  /** The package concerned, as `name` or `name@version`, when one is. */
  readonly package: string | undefined;
  constructor(message: string, pkg?: string) {
    super(message);
    this.package = pkg;
  }
}

/** A dependency (direct or transitive) is not in the loader's `npm.allow` list. */
export class PackageNotAllowedError extends PackageError {
  override name = "PackageNotAllowedError";
}

/** A tarball's bytes do not match the integrity its registry or lockfile names: it is not installed. */
export class PackageIntegrityError extends PackageError {
  override name = "PackageIntegrityError";
}

/** A dependency could not be resolved: unknown package or version, an unsupported spec, an unreachable registry, a lockfile that does not fit. */
export class PackageResolveError extends PackageError {
  override name = "PackageResolveError";
}

/** A package imports a Node built-in (`node:fs`, `fs`, ...), which a worker does not have. `chain` is how it was reached. */
export class NodeBuiltinImportError extends PackageError {
  override name = "NodeBuiltinImportError";
  readonly chain: readonly string[];
  constructor(chain: string[], pkg?: string) {
    super(`A dependency imports the Node built-in "${chain.at(-1)}", which workers do not have: ${chain.join(" -> ")}`, pkg);
    this.chain = chain;
  }
}

/** esbuild could not bundle the worker's dependencies (a missing file, a syntax error in a package). */
export class PackageBundleError extends PackageError {
  override name = "PackageBundleError";
}

/** One TypeScript diagnostic of `typecheck: true`. Lines and columns count from 1. */
export interface TypeCheckDiagnostic {
  file: string;
  line: number;
  column: number;
  /** TypeScript's code, e.g. 2322. */
  code: number;
  message: string;
}

/** `typecheck: true` found type errors; `diagnostics` lists them, the message as `file:line:col message` lines. */
export class TypeCheckError extends MayflyError {
  override name = "TypeCheckError";
  readonly diagnostics: readonly TypeCheckDiagnostic[];
  /** `message` replaces the list when the check itself could not finish (time or memory). */
  constructor(diagnostics: TypeCheckDiagnostic[], message?: string) {
    const lines = diagnostics.map((d) => `${d.file}:${d.line}:${d.column} TS${d.code}: ${d.message}`);
    super(message ?? `The worker has ${diagnostics.length} type error${diagnostics.length === 1 ? "" : "s"}:\n${lines.join("\n")}`);
    this.diagnostics = diagnostics;
  }
}

/**
 * A workspace operation failed as a file system call would: `code` is Node's (ENOENT, EEXIST, ENOTDIR,
 * EISDIR, ENOTEMPTY, EACCES, ENOSPC, EINVAL) and the message starts with it, as Node's do, which is
 * how the code survives the isolate boundary (only name and message cross).
 */
export class WorkspaceError extends MayflyError {
  override name = "WorkspaceError";
  readonly code: string;
  readonly path: string | undefined;
  constructor(code: string, message: string, path?: string) {
    super(`${code}: ${message}${path === undefined ? "" : ` '${path}'`}`);
    this.code = code;
    this.path = path;
  }
}

/** A workspace commit expected a version a file no longer has: nothing of that commit was applied. */
export class WorkspaceConflictError extends WorkspaceError {
  override name = "WorkspaceConflictError";
  /** The paths whose expectation was stale, with the version each has now (0: absent). */
  readonly conflicts: { path: string; expected: number; actual: number }[];
  constructor(conflicts: { path: string; expected: number; actual: number }[]) {
    super("ECONFLICT", `commit expected other versions (${conflicts.map((c) => `${c.path}: expected ${c.expected}, is ${c.actual}`).join("; ")}); nothing was written`);
    this.conflicts = conflicts;
  }
}

/** A plugin manifest is malformed; `field` names the first bad field (`permissions.network.0`). */
export class ManifestError extends MayflyError {
  override name = "ManifestError";
  readonly field: string;
  constructor(message: string, field: string) {
    super(message);
    this.field = field;
  }
}

/**
 * A manifest asks for a capability the host did not grant (an origin, a store, a tool, a secret, a
 * limit above the ceiling): nothing was installed. `permission` names it (`network`, `tools`, `limits.cpuMs`).
 */
export class ManifestGrantError extends MayflyError {
  override name = "ManifestGrantError";
  readonly permission: string;
  readonly requested: string;
  constructor(permission: string, requested: string, why: string) {
    super(`The manifest asks for ${permission} ${requested}, which the host does not grant: ${why}.`);
    this.permission = permission;
    this.requested = requested;
  }
}

/** Base of the plugin host's errors; `plugin` names the plugin concerned. */
export class PluginError extends MayflyError {
  override name = "PluginError";
  readonly plugin: string;
  constructor(plugin: string, message: string) {
    super(message);
    this.plugin = plugin;
  }
}

/** No plugin (or no pending update of that version) by that name. */
export class PluginNotFoundError extends PluginError {
  override name = "PluginNotFoundError";
}

/** The operation does not fit the plugin's state: installing one that exists, updating to an older version, a second subscriber to an exclusive hook. */
export class PluginStateError extends PluginError {
  override name = "PluginStateError";
}

/** A plugin called a host tool its manifest does not name (or one the host does not have); nothing was called. */
export class PluginToolError extends PluginError {
  override name = "PluginToolError";
}

/** A hook handler ran past its timeout; its isolate was ended. */
export class HookTimeoutError extends PluginError {
  override name = "HookTimeoutError";
}

/** The browser binding could not start Chromium (not installed at `executablePath`, or it failed to launch). */
export class BrowserUnavailableError extends MayflyError {
  override name = "BrowserUnavailableError";
}

/** A browser binding's cap (pages, bytes per run) was reached; what passed it did not happen. */
export class BrowserLimitError extends MayflyError {
  override name = "BrowserLimitError";
  /** Which option: "maxPages" or "maxBytes". */
  readonly limit: string;
  constructor(limit: string, message: string) {
    super(message);
    this.limit = limit;
  }
}

/**
 * The OS sandbox (`sandbox()` binding) cannot run here: bubblewrap is missing, or the kernel refuses
 * the namespaces it needs (user namespaces disabled, a seccomp profile). `reason` says which.
 */
export class SandboxUnavailableError extends MayflyError {
  override name = "SandboxUnavailableError";
  readonly reason: string;
  constructor(reason: string) {
    super(`The OS sandbox is unavailable on this machine: ${reason}`);
    this.reason = reason;
  }
}

/**
 * A sandboxed command was stopped (its whole process tree killed) because it went past one of its
 * limits: `limit` is "cpuMs", "memoryMb", "processes", "fileSizeMb" or "wallMs". The message names it
 * too, since only name and message cross into a worker. Nothing it wrote reaches the workspace.
 */
export class SandboxLimitError extends LimitError {
  override name = "SandboxLimitError";
  constructor(limit: "cpuMs" | "memoryMb" | "processes" | "fileSizeMb" | "wallMs", value: number) {
    super(limit, `The sandboxed command exceeded its ${limit} limit (${value}) and was stopped.`);
  }
}

/** A ladder's options ask for a rung that needs another one not granted (the OS sandbox without a workspace). */
export class LadderGrantError extends MayflyError {
  override name = "LadderGrantError";
}

/** Cluster mode: an actor call reached a host that does not own the actor (it is forwarded to the owner instead). */
export class NotOwnerError extends MayflyError {
  override name = "NotOwnerError";
}

/** Cluster mode: an actor's owner could not be reached, nor its lease taken over, in time. */
export class ActorUnreachableError extends MayflyError {
  override name = "ActorUnreachableError";
}
