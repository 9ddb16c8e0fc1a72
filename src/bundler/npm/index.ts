/**
 * npm dependencies at load time (issue 11, Tier 2): a WorkerCode's `packageJson` (and optional
 * `lockfile`) resolved on the host from the configured registry, each tarball verified against its
 * integrity, no install script run, the imported packages bundled by esbuild into the worker's modules,
 * and the result cached on disk by content hash. The guest never reaches a registry: it gets modules.
 */
import { join } from "node:path";
import type pacote from "pacote";
import { PackageBundleError } from "../../errors.ts";
import type { NormalizedModule } from "../../loader/worker-code.ts";
import { bundlePackages, importedPackages } from "./bundle.ts";
import { takenExports, type Taken } from "./imports.ts";
import { contentHash, DiskCache } from "./cache.ts";
import { DEFAULT_REGISTRY } from "./config.ts";
import { assertAllowed, assertLockfileFits, lockedEntries, nameOfPath, parseLockfile, type Lockfile, type WorkerPackageJson } from "./lockfile.ts";

/**
 * pacote (and npm-registry-fetch, cacache, sigstore under it) costs ~180 ms to import: loaded on the
 * first resolution or install, so importing mayfly, or a load whose bundle is cached, does not pay it.
 */
const installLockfile: typeof import("./install.ts").installLockfile = async (...args) => (await import("./install.ts")).installLockfile(...args);
const resolveLockfile: typeof import("./resolve.ts").resolveLockfile = async (...args) => (await import("./resolve.ts")).resolveLockfile(...args);

export { registryConfigFromEnvironment, DEFAULT_REGISTRY, type RegistryConfig } from "./config.ts";
export type { Lockfile, LockedPackage, WorkerPackageJson } from "./lockfile.ts";
export { readProjectPackages } from "./project.ts";

/** The loader's `npm` option: granting npm packages to the workers it loads. */
export interface NpmOptions {
  /** Where resolutions, verified tarballs, installs and bundles are kept (created if missing). */
  cacheDir: string;
  /** Registry URL (default https://registry.npmjs.org/); `registryConfigFromEnvironment()` reads npm's. */
  registry?: string;
  /** `@scope` → registry URL. */
  scopedRegistries?: Record<string, string>;
  /** npm-registry-fetch settings keyed as in .npmrc, e.g. `//registry.example.com/:_authToken`. */
  registryAuth?: Record<string, string>;
  /**
   * Package names that may be installed, `@scope/*` for a scope: checked for every package in the tree,
   * transitive ones included, before anything of it is fetched. Absent: any package.
   */
  allow?: string[];
  /** One registry request's time limit (default 30 s). */
  timeoutMs?: number;
}

/** What was bundled into a worker, for the caller to show or pin. */
export interface NpmReport {
  /** Every installed package, with the bytes of it that went into the worker's modules (0: not imported). */
  packages: { name: string; version: string; path: string; bytes: number }[];
  /** Total bytes of the modules added to the worker. */
  bytes: number;
  /** The modules added: one per imported specifier (named as the worker imports it) and the script holding the packages. */
  modules: string[];
  /** The lockfile installed: pass it back as `WorkerCode.lockfile` to install exactly this again. */
  lockfile: Lockfile;
  /** True when the bundle came from the disk cache (no registry request, no esbuild run). */
  cached: boolean;
}

/** Bumped when the bundle's shape changes, so old cache entries are not reused. */
const BUNDLE_FORMAT = 3;

interface CachedBundle {
  modules: { name: string; type: "esm" | "script"; content: string; hash?: string }[];
  bytesByPackage: Record<string, number>;
  bytes: number;
}

export class NpmBundler {
  readonly #opts: NpmOptions;
  readonly #cache: DiskCache;
  readonly #fetchOpts: pacote.Options;
  readonly #registries: string[];
  /** Work in flight by key: concurrent loads of the same code share one resolution and one bundle. */
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Recent import scans by the worker modules' content (see #scan). */
  readonly #scans = new Map<string, { specifiers: string[]; taken: Map<string, Taken> }>();

  constructor(opts: NpmOptions) {
    this.#opts = opts;
    this.#cache = new DiskCache(opts.cacheDir);
    const registry = withSlash(opts.registry ?? DEFAULT_REGISTRY);
    const scoped = Object.fromEntries(Object.entries(opts.scopedRegistries ?? {}).map(([s, r]) => [`${s}:registry`, withSlash(r)]));
    this.#registries = [registry, ...Object.values(scoped)];
    this.#fetchOpts = {
      ...opts.registryAuth,
      ...scoped,
      registry,
      // pacote's own content-addressed cache (packuments and tarballs), kept beside ours rather than in
      // the user's ~/.npm, so a loader never depends on or changes it.
      cache: join(opts.cacheDir, "_cacache"),
      fullMetadata: false,
      // A worker's first call waits on this: two quick retries, then a clear error, rather than npm's
      // default back-off of minutes against a registry that is down.
      retry: { retries: 2, factor: 2, minTimeout: 250, maxTimeout: 2_000 },
      timeout: opts.timeoutMs ?? 30_000,
    } as pacote.Options;
  }

  /**
   * The modules to add to a worker for its package.json (and lockfile) and the imports of its modules.
   * Throws PackageNotAllowedError, PackageResolveError, PackageIntegrityError, NodeBuiltinImportError
   * or PackageBundleError.
   */
  async bundle(input: {
    packageJson: WorkerPackageJson;
    lockfile?: unknown;
    modules: readonly NormalizedModule[];
    /** Also make sure the tree is installed and say where (type-checking reads the packages' types). */
    install?: boolean;
  }): Promise<{ modules: NormalizedModule[]; report: NpmReport; installDir?: string }> {
    const allow = this.#opts.allow;
    const dependencies = input.packageJson.dependencies ?? {};
    for (const name of Object.keys(dependencies)) assertAllowed(name, allow);
    const lockfile = await this.#lockfile(input.packageJson, input.lockfile);
    const entries = lockedEntries(lockfile);
    for (const [path] of entries) assertAllowed(nameOfPath(path), allow);
    const { specifiers, taken } = await this.#scan(input.modules, Object.keys(dependencies));
    const key = contentHash({ BUNDLE_FORMAT, entries, specifiers, taken: Object.fromEntries([...taken].map(([s, t]) => [s, t === "*" ? "*" : [...t].sort()])) });
    const { bundle, cached } = await this.#once(`bundle:${key}`, async () => {
      const hit = await this.#cache.get<CachedBundle>("bundles", key);
      if (hit) return { bundle: hit, cached: true };
      const dir = await installLockfile(lockfile, this.#opts.cacheDir, this.#fetchOpts, this.#registries);
      const out = await bundlePackages(dir, specifiers, taken, new Set(input.modules.map((m) => m.name)));
      const value: CachedBundle = {
        modules: out.modules.map((m) => ({ name: m.name, type: m.type === "script" ? "script" : "esm", content: m.content as string, ...(m.hash ? { hash: m.hash } : {}) })),
        bytesByPackage: out.bytesByPackage, bytes: out.bytes,
      };
      await this.#cache.set("bundles", key, value);
      return { bundle: value, cached: false };
    });
    const workerNames = new Set(input.modules.map((m) => m.name));
    const clash = bundle.modules.find((m) => workerNames.has(m.name));
    if (clash) throw new PackageBundleError(`The bundled package module "${clash.name}" has the name of one of the worker's own modules; rename that module.`);
    const installDir = input.install ? await installLockfile(lockfile, this.#opts.cacheDir, this.#fetchOpts, this.#registries) : undefined;
    return {
      installDir,
      modules: bundle.modules.map((m) => ({ name: m.name, type: m.type, content: m.content, ...(m.hash ? { hash: m.hash } : {}) })),
      report: {
        packages: entries.map(([path, p]) => ({ name: nameOfPath(path), version: p.version, path, bytes: bundle.bytesByPackage[nameOfPath(path)] ?? 0 })),
        bytes: bundle.bytes,
        modules: bundle.modules.map((m) => m.name),
        // A copy: the caller may edit it (to pin a version), and the cached one must not change.
        lockfile: structuredClone(lockfile),
        cached,
      },
    };
  }

  /**
   * The package specifiers the worker's modules import and what each takes, remembered by the modules'
   * content: a fresh load of the same code (the common case) skips esbuild and acorn (~3-7 ms).
   */
  async #scan(modules: readonly NormalizedModule[], dependencies: string[]): Promise<{ specifiers: string[]; taken: Map<string, Taken> }> {
    const key = contentHash({ dependencies, modules: modules.filter((m) => m.type === "esm" || m.type === "cjs").map((m) => [m.name, m.type, m.content]) });
    const hit = this.#scans.get(key);
    if (hit) {
      this.#scans.delete(key);
      this.#scans.set(key, hit);
      return hit;
    }
    const specifiers = await importedPackages(modules, dependencies);
    const scan = { specifiers, taken: takenExports(modules, specifiers) };
    this.#scans.set(key, scan);
    if (this.#scans.size > 256) this.#scans.delete(this.#scans.keys().next().value!);
    return scan;
  }

  /** The lockfile given (checked against package.json), or the cached resolution, or a new one. */
  async #lockfile(pkg: WorkerPackageJson, given: unknown): Promise<Lockfile> {
    if (given !== undefined && given !== null) {
      const lock = parseLockfile(given);
      assertLockfileFits(lock, pkg);
      return lock;
    }
    const key = contentHash({ registries: this.#registries, dependencies: pkg.dependencies ?? {} });
    return this.#once(`resolve:${key}`, async () => {
      const hit = await this.#cache.get<Lockfile>("resolutions", key);
      if (hit) return hit;
      const lock = await resolveLockfile(pkg, this.#fetchOpts, this.#opts.allow);
      await this.#cache.set("resolutions", key, lock);
      return lock;
    });
  }

  #once<T>(key: string, work: () => Promise<T>): Promise<T> {
    let p = this.#inflight.get(key) as Promise<T> | undefined;
    if (!p) {
      p = work().finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}
