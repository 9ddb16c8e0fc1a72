/**
 * A tiny npm registry for tests, in-process on 127.0.0.1: packuments and gzip tarballs built from
 * fixture directories (or packages already in node_modules), so npm tests never touch the network.
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { create } from "tar";

export interface PublishedVersion {
  manifest: Record<string, unknown> & { name: string; version: string };
  tarball: Buffer;
  integrity: string;
}

export class TestRegistry {
  readonly packages = new Map<string, Map<string, PublishedVersion>>();
  /** Every request path, in order: a test asserts on what was (not) fetched. */
  readonly requests: string[] = [];
  /** name@version → bytes served instead of the real tarball (the packument keeps the real integrity). */
  readonly tampered = new Map<string, Buffer>();
  #server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url!, "http://x").pathname);
      this.requests.push(path);
      const tgz = /^\/(.+)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(path);
      if (tgz) {
        const v = this.packages.get(tgz[1]!)?.get(tgz[2]!);
        if (!v) return void res.writeHead(404).end();
        res.writeHead(200, { "content-type": "application/octet-stream" });
        return void res.end(this.tampered.get(`${tgz[1]}@${tgz[2]}`) ?? v.tarball);
      }
      const versions = this.packages.get(path.slice(1));
      if (!versions) return void res.writeHead(404, { "content-type": "application/json" }).end('{"error":"Not found"}');
      const latest = [...versions.keys()].at(-1)!;
      const body = {
        name: path.slice(1),
        "dist-tags": { latest },
        versions: Object.fromEntries([...versions].map(([ver, p]) => [ver, {
          ...p.manifest,
          dist: { tarball: `${this.url}${p.manifest.name}/-/${p.manifest.name.split("/").pop()}-${ver}.tgz`, integrity: p.integrity },
        }])),
      };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((r) => this.#server!.listen(0, "127.0.0.1", r));
    const addr = this.#server.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}/`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.#server?.close(() => r()) ?? r());
  }

  /** Publishes a directory holding a package.json as a tarball (files under `package/`, as npm packs). */
  async publishDir(dir: string, overrides: Record<string, unknown> = {}): Promise<PublishedVersion> {
    const manifest = { ...JSON.parse(readFileSync(join(dir, "package.json"), "utf8")), ...overrides };
    const staging = mkdtempSync(join(tmpdir(), "mayfly-pack-"));
    try {
      const files = listFiles(dir).filter((f) => f !== "package.json");
      mkdirSync(join(staging, "package"), { recursive: true });
      for (const f of files) {
        mkdirSync(dirname(join(staging, "package", f)), { recursive: true });
        writeFileSync(join(staging, "package", f), readFileSync(join(dir, f)));
      }
      writeFileSync(join(staging, "package", "package.json"), JSON.stringify(manifest, null, 2));
      const file = join(staging, "p.tgz");
      await create({ gzip: true, cwd: staging, file, portable: true }, ["package"]);
      return this.publish(manifest, readFileSync(file));
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /** Publishes a package from in-memory files (`package.json` built from `manifest`). */
  async publishFiles(manifest: { name: string; version: string } & Record<string, unknown>, files: Record<string, string>): Promise<PublishedVersion> {
    const dir = mkdtempSync(join(tmpdir(), "mayfly-fixture-"));
    try {
      writeFileSync(join(dir, "package.json"), JSON.stringify(manifest));
      for (const [name, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), text);
      }
      return await this.publishDir(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  publish(manifest: PublishedVersion["manifest"], tarball: Buffer): PublishedVersion {
    const integrity = `sha512-${createHash("sha512").update(tarball).digest("base64")}`;
    const v: PublishedVersion = { manifest, tarball, integrity };
    if (!this.packages.has(manifest.name)) this.packages.set(manifest.name, new Map());
    this.packages.get(manifest.name)!.set(manifest.version, v);
    return v;
  }
}

function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .filter((f) => !f.split("/").includes("node_modules"));
}
