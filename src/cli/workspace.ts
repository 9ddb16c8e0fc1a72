/**
 * `mayfly workspace ls|cat|export|import`: a workspace inspected and moved from the command line,
 * reading the same SQLite file a server or a program uses (WAL lets them share it while it runs).
 */
import { createReadStream, createWriteStream, existsSync, statSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { workspace, workspaceFile, type Workspace } from "../bindings/workspace/index.ts";

interface Common { dataDir: string }

/** An existing workspace: reading commands must not create one by mistyping its name. */
function open(name: string, opts: Common, create = false): Workspace {
  if (!create && !existsSync(workspaceFile(name, opts.dataDir))) throw new Error(`no workspace "${name}" in ${opts.dataDir}`);
  return workspace({ name, dataDir: opts.dataDir });
}

async function using<T>(ws: Workspace, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  // `mayfly workspace ls … | head`: the reader leaving early is the end of the output, not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => (e.code === "EPIPE" ? process.exit(0) : undefined));
  try {
    return await fn(ws);
  } finally {
    ws.close();
  }
}

export function addWorkspaceCommands(program: Command): void {
  // One line, no usage text: the command was right, the workspace said no.
  const fail = (e: unknown) => {
    process.stderr.write(`mayfly: ${(e as Error).message}\n`);
    process.exitCode = 1;
  };
  const cmd = program.command("workspace").description("inspect, export and import workspaces (durable virtual file systems)");
  const dataDir = ["--data-dir <dir>", "where storage bindings keep their data", ".mayfly/data"] as const;

  cmd.command("ls").description("list a workspace's files and directories (directories end in /)")
    .argument("<name>", "the workspace").argument("[path]", "a directory in it", "")
    .option("-r, --recursive", "everything below the directory")
    .option("-l, --long", "type, size, version and modification time too")
    .option(...dataDir)
    .action((name: string, path: string, opts: Common & { recursive?: boolean; long?: boolean }) => using(open(name, opts), async (ws) => {
      const base = path.replace(/\/+$/, "");
      for (const e of await ws.readdir(path, { recursive: !!opts.recursive })) {
        const shown = e.type === "dir" ? `${e.name}/` : e.name;
        if (!opts.long) {
          process.stdout.write(`${shown}\n`);
          continue;
        }
        const s = await ws.stat(base === "" ? e.name : `${base}/${e.name}`);
        process.stdout.write(`${e.type === "dir" ? "d" : "-"} ${String(s.size).padStart(10)} v${String(s.version).padEnd(6)} ${new Date(s.mtimeMs).toISOString()} ${shown}\n`);
      }
    }).catch(fail));

  cmd.command("cat").description("write a file's bytes to standard output")
    .argument("<name>", "the workspace").argument("<path>", "the file")
    .option("--version <n>", "a kept earlier version", Number)
    .option(...dataDir)
    .action((name: string, path: string, opts: Common & { version?: number }) => using(open(name, opts), async (ws) => {
      await pipeline(Readable.fromWeb(ws.createReadStream(path, { version: opts.version }) as import("node:stream/web").ReadableStream), stdout());
    }).catch(fail));

  cmd.command("export").description("write the workspace (or a directory of it) as a tar archive")
    .argument("<name>", "the workspace").argument("[file]", "the archive (default: standard output)", "-")
    .option("--path <dir>", "only this directory", "")
    .option(...dataDir)
    .action((name: string, file: string, opts: Common & { path: string }) => using(open(name, opts), async (ws) => {
      await pipeline(Readable.fromWeb(ws.exportTar(opts.path) as import("node:stream/web").ReadableStream), file === "-" ? stdout() : createWriteStream(file));
    }).catch(fail));

  cmd.command("import").description("write a directory's files, or a tar archive's, into a workspace (created if new)")
    .argument("<name>", "the workspace").argument("<source>", "a directory, a .tar file, or - for a tar on standard input")
    .option("--into <dir>", "a directory of the workspace to import under", "")
    .option(...dataDir)
    .action((name: string, source: string, opts: Common & { into: string }) => using(open(name, opts, true), async (ws) => {
      const files = source !== "-" && statSync(source).isDirectory()
        ? await ws.importDirectory(source, opts.into)
        : await ws.importTar(source === "-" ? process.stdin : createReadStream(source), opts.into);
      process.stderr.write(`imported ${files} file${files === 1 ? "" : "s"} into ${name}\n`);
    }).catch(fail));
}

/** Standard output as a pipeline's end that does not close it (later output, and the process, still use it). */
function stdout(): Writable {
  return new Writable({
    write: (chunk, _enc, cb) => void (process.stdout.write(chunk) ? cb() : process.stdout.once("drain", () => cb())),
  });
}
