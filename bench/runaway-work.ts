// How much CPU a runaway really had when it was cut, measured by the work it got done rather than by
// the clock. isolated-vm counts the stretch of guest code still running by the wall clock (only
// finished stretches by the thread's CPU clock), so a RunReport's cpuMs for a run cut mid-loop is an
// upper bound that grows with every millisecond the guest thread spent waiting for a core. The
// runaway below logs a counter after each fixed unit of work; calibration runs, one at a time, turn
// units into CPU milliseconds (their loops tier up the same way), and a cut run's last counter then
// gives the CPU it used.
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
 * Units per CPU millisecond, from runaways cut one at a time. A calibration run's reported CPU can
 * only be inflated (by time its thread waited for a core, on a machine busy with other work), which
 * only ever lowers the rate it gives: the highest rate of `runs` is the closest to the truth.
 */
export async function calibrate(loader: WorkerLoader, reports: RunReport[], cpuMs: number, runs = 7): Promise<number> {
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
  return Math.max(...rates);
}
