import npa from "npm-package-arg";
import pacote from "pacote";
import semver from "semver";
import { PackageResolveError } from "../../errors.ts";
import { assertAllowed, type LockedPackage, type Lockfile, type WorkerPackageJson } from "./lockfile.ts";
import { packageError } from "./errors.ts";

/** What pacote.manifest() gives for a registry package (the fields used here; @types/pacote lags pacote). */
interface Manifest {
  name: string;
  version: string;
  _resolved: string;
  _integrity?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** A package placed in the tree: where it is installed and what it needs. */
interface Placed {
  path: string;
  name: string;
  pkg: LockedPackage;
  children: Map<string, Placed>;
  parent: Placed | undefined;
}

/**
 * Resolves package.json dependencies to a lockfile, as npm lays out node_modules: each package as high
 * in the tree as it can go (hoisted to the root unless a different version is already visible on its
 * path, then nested under the package that needs it). Only registry specs are accepted: a git, file or
 * URL dependency would make pacote run a `prepare` script or read the host's disk.
 */
export async function resolveLockfile(pkg: WorkerPackageJson, fetchOpts: pacote.Options, allow: readonly string[] | undefined): Promise<Lockfile> {
  const root: Placed = { path: "", name: "", pkg: { version: "", resolved: "", integrity: "", dependencies: pkg.dependencies ?? {} }, children: new Map(), parent: undefined };
  const manifests = new Map<string, Promise<Manifest>>();
  const manifest = (spec: string) => {
    let p = manifests.get(spec);
    if (!p) manifests.set(spec, (p = pacote.manifest(spec, fetchOpts) as unknown as Promise<Manifest>));
    return p;
  };
  const queue: Placed[] = [root];
  while (queue.length) {
    const node = queue.shift()!;
    for (const [name, range] of Object.entries(node.pkg.dependencies ?? {})) {
      const via = node.name ? `${node.name}@${node.pkg.version}` : undefined;
      assertAllowed(name, allow, via);
      const spec = registrySpec(name, range, via);
      const visible = findVisible(node, name);
      if (visible && semver.satisfies(visible.pkg.version, range, { includePrerelease: true })) continue;
      let m: Manifest;
      try {
        m = await manifest(spec);
      } catch (e) {
        throw packageError(e, spec, via);
      }
      if (!m._integrity) throw new PackageResolveError(`${m.name}@${m.version} has no integrity in its registry metadata; mayfly installs only verified tarballs.`, `${m.name}@${m.version}`);
      // Not visible on the path: hoist to the root. A different version visible: nest under the needer.
      const at = visible ? node : root;
      const placed: Placed = {
        path: `${at.path ? `${at.path}/` : ""}node_modules/${name}`,
        name,
        pkg: { version: m.version, resolved: m._resolved, integrity: m._integrity, ...(hasKeys(deps(m)) ? { dependencies: deps(m) } : {}) },
        children: new Map(),
        parent: at,
      };
      at.children.set(name, placed);
      queue.push(placed);
    }
  }
  const packages: Record<string, LockedPackage> = {};
  const collect = (n: Placed) => {
    for (const c of [...n.children.values()].sort((a, b) => a.path.localeCompare(b.path))) {
      packages[c.path] = c.pkg;
      collect(c);
    }
  };
  collect(root);
  const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => a.localeCompare(b)));
  return { lockfileVersion: 3, requires: true, packages: { "": { dependencies: { ...(pkg.dependencies ?? {}) } }, ...sorted } };
}

/** The nearest package of that name a file in `node` would find (Node's lookup: up the tree). */
function findVisible(node: Placed, name: string): Placed | undefined {
  for (let n: Placed | undefined = node; n; n = n.parent) {
    const hit = n.children.get(name);
    if (hit) return hit;
  }
  return undefined;
}

function registrySpec(name: string, range: string, via: string | undefined): string {
  let parsed: npa.Result;
  try {
    parsed = npa.resolve(name, range);
  } catch (e) {
    throw new PackageResolveError(`"${name}": "${range}"${via ? ` (needed by ${via})` : ""} is not a valid dependency: ${(e as Error).message}`, name);
  }
  if (parsed.type !== "version" && parsed.type !== "range" && parsed.type !== "tag") {
    throw new PackageResolveError(`"${name}": "${range}"${via ? ` (needed by ${via})` : ""} is a ${parsed.type} dependency; only registry versions, ranges and tags are installed.`, name);
  }
  return `${name}@${range}`;
}

/** What a package needs installed: dependencies, plus peer dependencies (installed by npm 7 and later) unless optional. */
function deps(m: Manifest): Record<string, string> {
  const meta = m.peerDependenciesMeta ?? {};
  const peers = Object.fromEntries(Object.entries(m.peerDependencies ?? {}).filter(([n]) => !meta[n]?.optional));
  return { ...peers, ...(m.dependencies ?? {}) };
}

function hasKeys(o: object): boolean {
  return Object.keys(o).length > 0;
}
