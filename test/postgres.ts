/**
 * A throwaway PostgreSQL server for tests and benchmarks: Debian's server binaries (package
 * `postgresql`), a fresh cluster in a temporary directory, listening on 127.0.0.1 on a free port, torn
 * down afterwards. PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
 * user Debian's package creates. Where no server binaries are installed, `findPostgres()` says why and
 * tests skip with that message (`.ci/run` installs the package).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export interface PostgresBinaries { bin: string; runAs?: { uid: number; gid: number } }

/** The newest installed server's bin directory, or the reason there is none. */
export function findPostgres(): PostgresBinaries | string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres"))) : [];
  if (versions.length === 0) return "PostgreSQL server binaries not found (apt-get install postgresql)";
  const bin = join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, "bin");
  if (process.getuid?.() !== 0) return { bin };
  const id = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (id.status !== 0) return "running as root and there is no `postgres` user to run the server as";
  return { bin, runAs: { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) } };
}

export class TestPostgres {
  readonly dir: string;
  port = 0;
  #server: ChildProcess | undefined;
  #databases = 0;

  private readonly binaries: PostgresBinaries;

  private constructor(binaries: PostgresBinaries) {
    this.binaries = binaries;
    this.dir = mkdtempSync(join(tmpdir(), "mayfly-pg-"));
    if (binaries.runAs) chownSync(this.dir, binaries.runAs.uid, binaries.runAs.gid);
  }

  /** initdb + start; resolves once the server accepts connections. */
  static async start(): Promise<TestPostgres> {
    const found = findPostgres();
    if (typeof found === "string") throw new Error(found);
    const server = new TestPostgres(found);
    const init = spawnSync(join(found.bin, "initdb"), ["-D", join(server.dir, "data"), "-A", "trust", "-U", "mayfly", "--no-sync", "-E", "UTF8", "--locale=C"], { encoding: "utf8", ...server.#ids() });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
    await server.#launch();
    return server;
  }

  /** The server's URL for a database (default: the maintenance database "postgres"). */
  url(database = "postgres"): string {
    return `postgres://mayfly@127.0.0.1:${this.port}/${database}`;
  }

  /** A fresh, empty database: each test file or suite gets its own, so nothing leaks between them. */
  async createDatabase(prefix = "t"): Promise<string> {
    const name = `${prefix}_${process.pid}_${++this.#databases}`;
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE "${name}"`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Stops the server (it can be started again on the same port and data: a restart). */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<void> {
    const server = this.#server;
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.once("exit", () => resolve());
      server.kill(signal);
    });
  }

  /** Starts a stopped server again on the same port and data directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch(this.port);
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #launch(port?: number): Promise<void> {
    this.port = port ?? (await freePort());
    const server = spawn(join(this.binaries.bin, "postgres"), [
      "-D", join(this.dir, "data"), "-p", String(this.port), "-k", this.dir,
      "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=32MB",
    ], { stdio: ["ignore", "ignore", "pipe"], ...this.#ids() });
    let log = "";
    server.stderr!.on("data", (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
    this.#server = server;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`postgres exited (${server.exitCode}): ${log}`);
      const client = new pg.Client({ connectionString: this.url() });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (error) {
        await client.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`postgres did not start: ${(error as Error).message}\n${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  #ids(): { uid?: number; gid?: number } {
    return this.binaries.runAs ? { uid: this.binaries.runAs.uid, gid: this.binaries.runAs.gid } : {};
  }
}

/** A TCP port free on 127.0.0.1 now (for servers that must be told their port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
