import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { findPostgres, TestPostgres } from "../postgres.ts";
import type { RunningServer } from "../../src/server/index.ts";
import { deploy, getJson, makeConfigDir, spawnHost, startHost } from "./helpers.ts";

/** Hosts as child processes: kill -9 of an actor's owner, and SIGTERM's drain. */
const found = findPostgres();
const skip = typeof found === "string" ? found : false;
const LEASE_MS = 2_000;

describe("cluster mode: losing and draining hosts", { skip }, () => {
  let postgres: TestPostgres;
  let url: string;
  let configDir: string;
  let a: RunningServer;

  before(async () => {
    postgres = await TestPostgres.start();
    url = await postgres.createDatabase("failover");
    configDir = makeConfigDir();
    deploy(configDir, url);
    a = await startHost({ postgresUrl: url, hostId: "a", leaseMs: LEASE_MS });
  });

  after(async () => {
    await a?.close();
    await postgres?.close();
    rmSync(configDir, { recursive: true, force: true });
  });

  test("kill -9 of the owner mid-load: no acknowledged write lost, the actor answers again from another host within the lease time", async () => {
    const x = await spawnHost({ postgresUrl: url, hostId: "x", leaseMs: LEASE_MS });
    assert.deepEqual((await getJson(`${x.url}/w/counter/inc?name=crash`)).body, { n: 1 }, "x owns the actor");
    const acked: number[] = [1];
    let killedAt = 0;
    let recoveredAt = 0;
    let stop = false;
    const client = async (i: number) => {
      for (let k = 0; !stop; k++) {
        const via = killedAt || (i + k) % 2 === 0 ? a.url : x.url;
        const started = Date.now();
        try {
          const r = await getJson(`${via}/w/counter/inc?name=crash`);
          if (r.status === 200) {
            acked.push(r.body.n);
            if (killedAt && started > killedAt && !recoveredAt) recoveredAt = Date.now();
          }
        } catch {
          // Refused by the killed host: not acknowledged.
        }
        if (recoveredAt && Date.now() - recoveredAt > 300) stop = true;
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(client));
    while (acked.length < 30) await new Promise((r) => setTimeout(r, 10));
    x.child.kill("SIGKILL");
    killedAt = Date.now();
    await x.exited;
    const timeout = setTimeout(() => { stop = true; }, LEASE_MS * 5);
    await load;
    clearTimeout(timeout);
    assert.ok(recoveredAt > 0, "the actor answered again");
    const downMs = recoveredAt - killedAt;
    // The lease time, plus one renewal interval the dead owner may have just made, plus a rebuild on a busy machine.
    assert.ok(downMs < LEASE_MS * 2 + 1_000, `answered again after ${downMs} ms`);
    assert.equal(new Set(acked).size, acked.length, "each acknowledged increment is distinct");
    const final = (await getJson(`${a.url}/w/counter/read?name=crash`)).body;
    assert.ok(final.n >= Math.max(...acked), `final ${final.n} < acknowledged ${Math.max(...acked)}`);
    assert.ok(final.n >= acked.length);
    assert.equal(final.hits, final.n, "SQL and KV writes of each call together");
    console.log(`# kill -9: ${acked.length} acknowledged, final ${final.n}, answered again after ${downMs} ms`);
  });

  test("an alarm set on a host that then leaves fires on another host", async () => {
    const y = await spawnHost({ postgresUrl: url, hostId: "y", leaseMs: LEASE_MS });
    const set = await getJson(`${y.url}/w/counter/alarm?name=alarmed&ms=800`);
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(typeof set.body.at, "number", "getAlarm() answers the time set");
    y.child.kill("SIGTERM");
    assert.equal(await y.exited, 0);
    const deadline = Date.now() + 5_000;
    let seen: { alarms: number; pending: number | null } = { alarms: 0, pending: null };
    while (Date.now() < deadline) {
      seen = (await getJson(`${a.url}/w/counter/alarms?name=alarmed`)).body;
      if (seen.alarms === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(seen, { alarms: 1, pending: null }, "fired once, on host a, and cleared");
  });

  test("SIGTERM drains: readiness drops, in-flight requests finish, leases are released at once", async () => {
    const d = await spawnHost({ postgresUrl: url, hostId: "d", leaseMs: 10_000, drainMs: 5_000 });
    assert.deepEqual((await getJson(`${d.url}/w/counter/inc?name=drained`)).body, { n: 1 }, "d owns the actor");
    const inFlight: [Promise<{ status: number; body: any }>, Promise<{ status: number; body: any }>] = [getJson(`${d.url}/w/hello/slow?ms=1500`), getJson(`${d.url}/w/counter/slow?name=drained&ms=1500`)];
    await new Promise((r) => setTimeout(r, 300));
    d.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 100));
    const ready = await getJson(`${d.url}/readyz`).catch(() => ({ status: 0 }));
    assert.ok(ready.status === 503 || ready.status === 0, `readyz while draining: ${ready.status}`);
    const [hello, actor] = await Promise.all(inFlight);
    assert.equal(hello.status, 200, JSON.stringify(hello.body));
    assert.equal(actor.status, 200, JSON.stringify(actor.body));
    assert.equal(actor.body, "done");
    assert.equal(await d.exited, 0, d.stderr());
    // Released on drain: another host takes the actor now, not after d's 10 s lease.
    const started = Date.now();
    assert.deepEqual((await getJson(`${a.url}/w/counter/inc?name=drained`)).body, { n: 2 });
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  });
});
