import { test } from "node:test";
import assert from "node:assert/strict";
import { CapabilityTable, type Capability } from "./capability.ts";

function recorder(events: string[]): Capability {
  return {
    kind: "rpc",
    call: async () => null,
    runsBegan: () => void events.push("began"),
    runsEnded: async () => void events.push("ended"),
  };
}

test("a capability hears when runs begin and when the last run in flight has ended", () => {
  const events: string[] = [];
  const table = new CapabilityTable();
  table.add(recorder(events));
  const first = table.beginRun();
  const second = table.beginRun();
  assert.deepEqual(events, ["began"], "a second concurrent run shares what the first began");
  first();
  first();
  assert.deepEqual(events, ["began"], "ending one run twice counts once; the other is still in flight");
  second();
  assert.deepEqual(events, ["began", "ended"]);
  table.beginRun()();
  assert.deepEqual(events, ["began", "ended", "began", "ended"]);
});

test("closing the table ends the runs still in flight, once", () => {
  const events: string[] = [];
  const table = new CapabilityTable();
  table.add(recorder(events));
  const end = table.beginRun();
  table.close();
  end();
  assert.deepEqual(events, ["began", "ended"]);
});
