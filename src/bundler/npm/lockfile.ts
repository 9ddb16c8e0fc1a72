import semver from "semver";
import { PackageNotAllowedError, PackageResolveError } from "../../errors.ts";

/** The subset of package.json a worker may carry: its dependencies, by name and semver range. */
export interface WorkerPackageJson {
  dependencies?: Record<string, string>;
}

/** One installed package in a lockfile (package-lock.json v3's `packages["node_modules/..."]`). */
export interface LockedPackage {
  version: string;
  resolved: string;
  integrity: string;
  dependencies?: Record<string, string>;
}

/**
 * A package-lock.json (lockfileVersion 3) as npm writes it: `packages` keyed by install path
 * (`node_modules/a`, `node_modules/a/node_modules/b`), the root at `""`. mayfly writes this shape and
 * installs exactly such a file, so a user can pin with the lockfile a load returned or with npm's own.
 */
export interface Lockfile {
  name?: string;
  lockfileVersion: 3;
  requires?: boolean;
  packages: { "": { dependencies?: Record<string, string> } } & Record<string, LockedPackage | { dependencies?: Record<string, string> }>;
}

/** The package name of an install path: `node_modules/a/node_modules/@s/b` → `@s/b`. */
export function nameOfPath(path: string): string {
  return path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
}

/** The package name of an import specifier: `date-fns/format` → `date-fns`, `@s/b/x` → `@s/b`. */
export function packageOfSpecifier(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** `allow` entries are package names, `@scope/*` for a whole scope, or `*` for any package. */
export function isAllowed(name: string, allow: readonly string[] | undefined): boolean {
  if (allow === undefined) return true;
  return allow.some((a) => a === "*" || a === name || (a.endsWith("/*") && name.startsWith(a.slice(0, -1))));
}

export function assertAllowed(name: string, allow: readonly string[] | undefined, via?: string): void {
  if (isAllowed(name, allow)) return;
  throw new PackageNotAllowedError(
    `The package "${name}"${via ? ` (a dependency of ${via})` : ""} is not in this loader's npm.allow list (${allow!.join(", ") || "empty"}).`,
    name,
  );
}

/** Registry packages only: a git, file, link or URL dependency could run code or read the host's disk. */
export function lockedEntries(lock: Lockfile): [path: string, pkg: LockedPackage][] {
  const out: [string, LockedPackage][] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "") continue;
    const e = entry as Partial<LockedPackage> & { link?: boolean; name?: string; dev?: boolean };
    // npm's lockfile lists devDependencies too; a worker runs with its dependencies only.
    if (e.dev === true) continue;
    const name = nameOfPath(path);
    if (!path.startsWith("node_modules/") || name === "" || path.split("/").some((s) => s === ".." || s === ".")) {
      throw new PackageResolveError(`The lockfile entry "${path}" is not an install path under node_modules/.`, name);
    }
    if (e.link || (e.name !== undefined && e.name !== name)) {
      throw new PackageResolveError(`The lockfile entry "${path}" is a link or an alias; only registry packages can be installed.`, name);
    }
    if (typeof e.version !== "string" || !semver.valid(e.version)) {
      throw new PackageResolveError(`The lockfile entry "${path}" has no exact version.`, name);
    }
    if (typeof e.integrity !== "string" || !e.integrity) {
      throw new PackageResolveError(`The lockfile entry "${path}" (${name}@${e.version}) has no integrity; mayfly installs only verified tarballs.`, `${name}@${e.version}`);
    }
    out.push([path, { version: e.version, resolved: typeof e.resolved === "string" ? e.resolved : "", integrity: e.integrity, dependencies: e.dependencies }]);
  }
  return out;
}

/** A lockfile given with a package.json must satisfy it, as `npm ci` requires. */
export function assertLockfileFits(lock: Lockfile, pkg: WorkerPackageJson): void {
  for (const [name, range] of Object.entries(pkg.dependencies ?? {})) {
    const entry = lock.packages[`node_modules/${name}`] as Partial<LockedPackage> | undefined;
    if (!entry?.version) {
      throw new PackageResolveError(`The lockfile does not install "${name}", which packageJson.dependencies asks for (${range}); regenerate the lockfile.`, name);
    }
    if (!semver.satisfies(entry.version, range)) {
      throw new PackageResolveError(`The lockfile has ${name}@${entry.version}, which does not satisfy packageJson.dependencies "${range}"; regenerate the lockfile.`, `${name}@${entry.version}`);
    }
  }
}

/** Parses a lockfile given as text or object; anything but a v2/v3 `packages` lockfile is refused. */
export function parseLockfile(input: unknown): Lockfile {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw new PackageResolveError(`The lockfile is not JSON: ${(e as Error).message}`);
    }
  }
  const v = value as Partial<Lockfile> | null;
  if (typeof v !== "object" || v === null || typeof v.packages !== "object" || v.packages === null) {
    throw new PackageResolveError("The lockfile has no \"packages\" (lockfileVersion 2 or 3, as npm 7 and later write) to install.");
  }
  return { lockfileVersion: 3, requires: true, packages: { ...v.packages, "": v.packages[""] ?? {} } as Lockfile["packages"] };
}
