import { d1Suite } from "./sql.suite.ts";
import { sql } from "../../src/index.ts";
import { useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-sql-");

d1Suite("one SQLite file per database", { ctx, make: (options) => sql({ ...options, dataDir }), dir: dataDir });
