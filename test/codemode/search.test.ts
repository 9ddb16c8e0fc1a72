import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CodeMode, openApiTools } from "../../src/index.ts";
import { useLoader } from "../helpers.ts";
import { SECRET, tasksSpec } from "./fixtures.ts";

const ctx = useLoader({ executors: 1 });
let cm: CodeMode;

before(async () => {
  const tools = await openApiTools({ namespace: "tasks", spec: tasksSpec, baseUrl: "http://127.0.0.1:9/api", headers: { authorization: SECRET }, allowPrivateAddresses: true });
  cm = new CodeMode({ loader: ctx.loader, tools, inlineTypesUpTo: 2 });
});

describe("Code Mode: search", () => {
  test("keyword search ranks operations and returns their declarations", async () => {
    const r = await cm.search("create a new task", 2);
    assert.equal(r.matches[0]!.tool, "tasks.tasksCreate");
    assert.equal(r.matches[0]!.description, "Create a task");
    assert.ok(r.matches.length <= 2);
    assert.match(r.types, /tasksCreate\(input: TasksTasksCreateInput\): Promise<Task>|tasksCreate\(input: TasksTasksCreateInput\): Promise<TasksTasksCreateOutput>/);
    assert.match(r.types, /interface TasksTasksCreateInput/);
    const me = await cm.search("authenticated user");
    assert.equal(me.matches[0]!.tool, "tasks.usersGetAuthenticated");
    // Words split from camelCase names and paths match too; nothing matches nonsense.
    assert.equal((await cm.search("projects")).matches.length, 3);
    assert.deepEqual((await cm.search("zzzqqq")).matches, []);
  });

  test("code search queries the $ref-resolved catalog in an offline isolate and gets declarations back", async () => {
    const r = await cm.searchWithCode(`
      const hits = spec.operations.filter((op) => op.inputSchema.properties.body?.required?.includes("title"));
      let net; try { await fetch("http://127.0.0.1:9/"); net = "online" } catch (e) { net = e.name }
      console.log(net, JSON.stringify(spec).includes("tok-7f3a9c") ? "secret visible" : "no secret");
      return hits.map((op) => op.tool)`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.deepEqual(r.result, ["tasks.tasksCreate"]);
    assert.match(r.types, /declare const tasks: \{[\s\S]*tasksCreate\(/);
    assert.doesNotMatch(r.types, /tasksList\(/);
    assert.match(r.logs[0]!, /no secret$/);
    assert.doesNotMatch(r.logs[0]!, /^online/);
  });

  test("a large API's execute description points to search instead of inlining every declaration", async () => {
    const d = await cm.describe();
    assert.match(d.execute, /Namespaces: tasks \(4 operations\)\. Use search first/);
    assert.doesNotMatch(d.execute, /declare const/);
    const small = new CodeMode({ loader: ctx.loader, tools: cm.tools });
    assert.match((await small.describe()).execute, /declare const tasks/);
  });
});
