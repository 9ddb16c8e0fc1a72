// Smoke test for the workerd peer:
//   node bench/peers/workerd.smoke.ts [--hold N] [--iters N]
// Starts workerd, measures p50 of /load (fresh isolate) and /get?id=a (warm),
// then the RSS growth per live isolate for /hold?count=N, and closes.

import { readFile } from "node:fs/promises";
import { startWorkerdPeer } from "./workerd.ts";

function argNum(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m || m[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

function p50(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

async function timedGet(url: string): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const body = await res.text();
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`${url} -> ${res.status}: ${body}`);
  return { ms, body };
}

const iters = argNum("--iters", 20);
const hold = argNum("--hold", 200);

const peer = await startWorkerdPeer();
try {
  console.log(`workerd peer at ${peer.url} (pid ${peer.pid})`);

  const loadMs: number[] = [];
  let lastBody = "";
  for (let i = 0; i < iters; i++) {
    const r = await timedGet(`${peer.url}/load?n=${i}`);
    loadMs.push(r.ms);
    lastBody = r.body;
  }
  const parsed = JSON.parse(lastBody) as { hello?: string };
  if (parsed.hello !== "world") throw new Error(`unexpected /load body: ${lastBody}`);
  console.log(`/load     p50 ${p50(loadMs).toFixed(2)} ms  (n=${iters}, body ${lastBody})`);

  const getMs: number[] = [];
  for (let i = 0; i < iters; i++) {
    const r = await timedGet(`${peer.url}/get?id=a`);
    getMs.push(r.ms);
    lastBody = r.body;
  }
  console.log(
    `/get?id=a p50 ${p50(getMs).toFixed(2)} ms  (n=${iters}, first ${getMs[0]?.toFixed(2)} ms)`,
  );

  await new Promise((r) => setTimeout(r, 200));
  const before = await rssKiB(peer.pid);
  const t0 = performance.now();
  const held = await timedGet(`${peer.url}/hold?count=${hold}`);
  const holdMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 200));
  const after = await rssKiB(peer.pid);
  const perIsolateMB = (after - before) / 1024 / hold;
  console.log(
    `/hold     ${held.body} in ${holdMs.toFixed(0)} ms; RSS ${(before / 1024).toFixed(1)} -> ` +
      `${(after / 1024).toFixed(1)} MB; ${perIsolateMB.toFixed(3)} MB per isolate`,
  );
} finally {
  await peer.close();
}
