/**
 * A workspace as a capability: the guest stub's calls (runtime/guest/workspace.ts) mapped onto the
 * Workspace's methods. In "read" mode every method that writes is refused here, before it runs.
 */
import { WorkspaceError } from "../../errors.ts";
import { STREAM_BODIES_OVER, type Capability } from "../capability.ts";
import type { CommitOp, Workspace, WorkspaceData } from "./index.ts";

/** Methods a worker calls that change the workspace: all EACCES in "read" mode. */
const WRITES = new Set(["writeFile", "appendFile", "mkdir", "rm", "rename", "cp", "commit", "restore"]);

export function workspaceCapability(ws: Workspace): Capability {
  return {
    kind: "workspace",
    async call(method, args) {
      if (WRITES.has(method) && ws.mode === "read") {
        throw new WorkspaceError("EACCES", `permission denied (the workspace "${ws.name}" is read-only to this worker), ${method}`, typeof args[0] === "string" ? args[0] : undefined);
      }
      const [a, b] = args as [unknown, unknown];
      switch (method) {
        case "readFile": case "open": {
          const file = await ws.open(a as string, b as { version?: number });
          // A small file crosses whole; a large one (or any, for open) streams a chunk per read.
          return { size: file.size, version: file.version, body: method === "readFile" && file.size <= STREAM_BODIES_OVER ? await file.bytes() : file.stream() };
        }
        case "writeFile": return { version: await ws.writeFile(a as string, b as WorkspaceData) };
        case "appendFile": return { version: await ws.appendFile(a as string, b as WorkspaceData) };
        case "stat": return ws.stat(a as string);
        case "readdir": return ws.readdir(a as string, b as { recursive?: boolean });
        case "mkdir": return ws.mkdir(a as string, b as { recursive?: boolean });
        case "rm": return ws.rm(a as string, b as { recursive?: boolean; force?: boolean });
        case "rename": return ws.rename(a as string, b as string);
        case "cp": return ws.cp(a as string, b as string, args[2] as { recursive?: boolean });
        case "glob": return ws.glob(a as string);
        case "grep": return ws.grep(a as { source: string; flags: string }, b as { path?: string });
        case "diff": return ws.diff(a as string, b as string | { version: number });
        case "commit": return ws.commit(a as CommitOp[], b as { expect?: Record<string, number> });
        case "restore": return { version: await ws.restore(a as string, b as number) };
        case "history": return ws.history(a as string);
        case "changes": return ws.changes(a as number);
        default: throw new TypeError(`Workspaces have no method ${method}().`);
      }
    },
  };
}
