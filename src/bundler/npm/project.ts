import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PackageResolveError } from "../../errors.ts";
import type { WorkerPackageJson } from "./lockfile.ts";

/**
 * A worker's package.json read from disk (for `mayfly run --package-json` and named workers), with the
 * lockfile given, or else the package-lock.json beside it when there is one. Only `dependencies` is
 * kept: scripts and the rest are never used.
 */
export function readProjectPackages(packageJsonPath: string, lockfilePath?: string): { packageJson: WorkerPackageJson; lockfile?: string } {
  let pkg: { dependencies?: Record<string, string> };
  try {
    pkg = JSON.parse(readFileSync(packageJsonPath, "utf8"));
  } catch (e) {
    throw new PackageResolveError(`Cannot read ${packageJsonPath}: ${(e as Error).message}`);
  }
  const lockPath = lockfilePath ?? join(dirname(packageJsonPath), "package-lock.json");
  if (lockfilePath !== undefined && !existsSync(lockPath)) throw new PackageResolveError(`The lockfile ${lockPath} does not exist.`);
  return {
    packageJson: { dependencies: { ...(pkg.dependencies ?? {}) } },
    ...(existsSync(lockPath) ? { lockfile: readFileSync(lockPath, "utf8") } : {}),
  };
}
