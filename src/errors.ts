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
export class QuotaExceededError extends MayflyError {
  override name = "QuotaExceededError";
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

/** A configuration file (mayfly.config.json) is missing, malformed, or names something that is not there. */
export class ConfigError extends MayflyError {
  override name = "ConfigError";
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
