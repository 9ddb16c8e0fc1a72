/**
 * What a caller of the HTTP API may ask for. A caller chooses its run's limits in `POST /v1/run`, so
 * without ceilings `{ cpuMs: 1e9 }` and `for(;;){}` would hold a core for days; the ceilings, the body
 * sizes and the in-flight caps are the operator's, globally and per token.
 */
import { z } from "zod";
import { DEFAULT_LIMITS, type Limits } from "../engine/limits.ts";
import { ConfigError, MayflyError } from "../errors.ts";

const positiveInt = z.number().int().positive();

/** Bounds a token may override (the total in-flight cap and Retry-After are the server's alone). */
export const tokenBoundsSchema = z.strictObject({
  maxCpuMs: z.number().positive().optional(),
  maxWallMs: z.number().positive().optional(),
  maxMemoryMb: z.number().positive().optional(),
  maxSubrequests: z.number().int().nonnegative().optional(),
  maxOutputBytes: positiveInt.optional(),
  maxLogBytes: z.number().int().nonnegative().optional(),
  /** POST /v1/run bodies (the JSON with the worker's code and request). */
  maxRequestBodyBytes: positiveInt.optional(),
  /** Request bodies streamed to named workers at /w/<name>/*. */
  maxWorkerBodyBytes: positiveInt.optional(),
  maxInFlightPerToken: positiveInt.optional(),
});

export const boundsSchema = tokenBoundsSchema.extend({
  /** Runs in flight on the whole server, every caller together. */
  maxInFlight: positiveInt.optional(),
  /** The Retry-After a 429 carries, in seconds. */
  retryAfterSeconds: positiveInt.optional(),
});

export type Bounds = Required<z.infer<typeof boundsSchema>>;
export type TokenBounds = z.infer<typeof tokenBoundsSchema>;

/**
 * Generous for real work, small enough that a few hostile requests cannot take the host: a run costs
 * at most 30 s of one core, and only so many run at once.
 */
export const DEFAULT_BOUNDS: Readonly<Bounds> = Object.freeze({
  maxCpuMs: 30_000,
  maxWallMs: 60_000,
  maxMemoryMb: 512,
  maxSubrequests: 1_000,
  maxOutputBytes: DEFAULT_LIMITS.outputBytes,
  maxLogBytes: DEFAULT_LIMITS.logBytes,
  maxRequestBodyBytes: 1024 * 1024,
  maxWorkerBodyBytes: 100 * 1024 * 1024,
  maxInFlight: 256,
  maxInFlightPerToken: 64,
  retryAfterSeconds: 1,
});

/** Each caller-settable limit and the bound that caps it. */
const CEILINGS = {
  cpuMs: "maxCpuMs",
  wallMs: "maxWallMs",
  memoryMb: "maxMemoryMb",
  subRequests: "maxSubrequests",
  outputBytes: "maxOutputBytes",
  logBytes: "maxLogBytes",
} as const satisfies Record<keyof Limits, keyof Bounds>;

/** Defaults, then the server's bounds, then a token's: each later one wins where it says something. */
export function resolveBounds(...layers: (Partial<Bounds> | TokenBounds | undefined)[]): Bounds {
  const out: Bounds = { ...DEFAULT_BOUNDS };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer ?? {})) if (v !== undefined) (out as Record<string, number>)[k] = v;
  }
  return out;
}

/** Bounds given in code (the config file's are checked with the rest of it): a bad one stops startup. */
export function checkBounds(bounds: unknown, where: string, schema: z.ZodType = boundsSchema): void {
  const parsed = schema.safeParse(bounds ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${where}${issue.path.length ? `.${issue.path.join(".")}` : ""}: ${issue.message}`);
  }
}

/** A request asked for a limit above the server's ceiling for it (400). */
export class LimitAboveCeilingError extends MayflyError {
  override name = "LimitAboveCeilingError";
  /** The limit, as in `worker.limits`. */
  readonly limit: string;
  /** The bound that caps it, as in the config's `bounds`. */
  readonly bound: string;
  readonly requested: number;
  readonly ceiling: number;
  constructor(limit: string, bound: string, requested: number, ceiling: number) {
    super(`limits.${limit} ${requested} is above this server's ceiling of ${ceiling} (${bound}).`);
    this.limit = limit;
    this.bound = bound;
    this.requested = requested;
    this.ceiling = ceiling;
  }
}

/** Too many runs in flight, on the server or for this token (429). */
export class TooManyRunsError extends MayflyError {
  override name = "TooManyRunsError";
  /** maxInFlight or maxInFlightPerToken. */
  readonly bound: string;
  readonly ceiling: number;
  constructor(bound: "maxInFlight" | "maxInFlightPerToken", ceiling: number) {
    super(bound === "maxInFlight"
      ? `This server already runs ${ceiling} workers (maxInFlight); retry later.`
      : `This token already has ${ceiling} runs in flight (maxInFlightPerToken); retry later.`);
    this.bound = bound;
    this.ceiling = ceiling;
  }
}

/** A request body larger than the bound for its route (413). */
export class BodyTooLargeError extends MayflyError {
  override name = "PayloadTooLarge";
  readonly bound: string;
  readonly ceiling: number;
  constructor(bound: "maxRequestBodyBytes" | "maxWorkerBodyBytes", ceiling: number) {
    super(`Request bodies are limited to ${ceiling} bytes (${bound}).`);
    this.bound = bound;
    this.ceiling = ceiling;
  }
}

/**
 * The limits a run gets: what it asked for, refused above a ceiling, and every limit it left out set to
 * the default capped by the ceiling, so no run ever exceeds a ceiling silently. Keys other than the
 * known limits pass through for the loader to refuse.
 */
export function boundLimits(requested: Record<string, number> | undefined, bounds: Bounds, defaults: Limits = DEFAULT_LIMITS): Record<string, number> {
  const out: Record<string, number> = { ...requested };
  for (const [limit, bound] of Object.entries(CEILINGS) as [keyof Limits, keyof Bounds][]) {
    const ceiling = bounds[bound];
    const asked = requested?.[limit];
    if (asked === undefined) out[limit] = Math.min(defaults[limit], ceiling);
    else if (!(asked <= ceiling)) throw new LimitAboveCeilingError(limit, bound, asked, ceiling);
  }
  return out;
}

/** Runs in flight, in total and per token; `acquire` either admits a run (returning its release) or refuses. */
export class InFlight {
  private total = 0;
  private readonly byToken = new Map<string, number>();
  private readonly maxTotal: number;

  constructor(maxTotal: number) {
    this.maxTotal = maxTotal;
  }

  get size(): number {
    return this.total;
  }

  /** `token` undefined: an open server, where only the total counts. The release is idempotent. */
  acquire(token: string | undefined, maxPerToken: number): (() => void) | TooManyRunsError {
    if (this.total >= this.maxTotal) return new TooManyRunsError("maxInFlight", this.maxTotal);
    const mine = token === undefined ? 0 : this.byToken.get(token) ?? 0;
    if (token !== undefined && mine >= maxPerToken) return new TooManyRunsError("maxInFlightPerToken", maxPerToken);
    this.total++;
    if (token !== undefined) this.byToken.set(token, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      if (token === undefined) return;
      const left = (this.byToken.get(token) ?? 1) - 1;
      if (left) this.byToken.set(token, left);
      else this.byToken.delete(token);
    };
  }
}
