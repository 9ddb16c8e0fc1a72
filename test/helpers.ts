import type { WorkerCode } from "../src/index.ts";

/** A one-module worker from its source, with the compatibility date every test uses. */
export function worker(source: string, extra: Partial<WorkerCode> = {}): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": source }, ...extra };
}

export async function fetchText(stub: { getEntrypoint(): { fetch(u: string, i?: RequestInit): Promise<Response> } }, url = "http://worker/", init?: RequestInit): Promise<string> {
  const res = await stub.getEntrypoint().fetch(url, init);
  return res.text();
}
