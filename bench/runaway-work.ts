// How much CPU a runaway really had when it was cut, measured by the work it got done rather than by
// the clock. isolated-vm counts the stretch of guest code still running by the wall clock (only
// finished stretches by the thread's CPU clock), so a RunReport's cpuMs for a run cut mid-loop is an
// upper bound that grows with every millisecond the guest thread spent waiting for a core. The
// runaway below logs a counter after each fixed unit of work; a calibration run on an idle executor
// turns units into CPU milliseconds (its loop tiers up the same way), and a cut run's last counter
// then gives the CPU it used.
import type { RunReport, WorkerCode, WorkerLoader } from "../src/index.ts";

/** A worker that spins forever, logging the number of work units done so far after each one. */
export function countingRunaway(cpuMs: number): WorkerCode {
  const source = `export default { fetch() {
    let n = 0, x = 0;
    for (;;) { for (let i = 0; i < 2000000; i++) x = (x + i) | 0; console.log(++n); }
  } }`;
  return { compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": source }, limits: { cpuMs } };
}

/** Work units a run completed: the last counter it logged (0 if none). */
export function unitsDone(report: RunReport): number {
  const last = report.logs.at(-1);
  return last ? Number(last.message) || 0 : 0;
}

/**
 * Units per CPU millisecond, from runaways cut on an idle loader (one at a time, so their threads
 * never wait for a core and the reported CPU is what they used). The median of `runs`.
 */
export async function calibrate(loader: WorkerLoader, reports: RunReport[], cpuMs: number, runs = 5): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    reports.length = 0;
    const stub = loader.load(countingRunaway(cpuMs));
    await stub.getEntrypoint().fetch("http://calibrate/").catch(() => {});
    stub.dispose();
    const cut = reports.find((r) => r.outcome === "exceededCpu");
    if (cut && cut.cpuMs > 0) rates.push(unitsDone(cut) / cut.cpuMs);
  }
  if (!rates.length) throw new Error("calibration: no runaway was cut");
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}
