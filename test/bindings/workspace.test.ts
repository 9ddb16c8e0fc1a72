import type { DatabaseSync } from "node:sqlite";
import { workspace, type Workspace } from "../../src/index.ts";
import { useTempDir } from "../helpers.ts";
import { workspaceSuite } from "./workspace.suite.ts";

const dataDir = useTempDir("mayfly-ws-");

const dbOf = (ws: Workspace) => (ws as unknown as { store: { db: DatabaseSync } }).store.db;

workspaceSuite("SQLite", {
  make: (name, options) => workspace({ name, dataDir, ...options }),
  contentSizes: async (ws) => dbOf(ws).prepare("SELECT size FROM contents ORDER BY id").all().map((r) => (r as { size: number }).size),
});
