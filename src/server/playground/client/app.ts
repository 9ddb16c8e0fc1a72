/**
 * The playground in the browser: a CodeMirror editor (TypeScript highlighting), the request and limit
 * fields, and the result of POST /v1/run. Bundled by the server with esbuild on first request.
 */
import { EditorView, basicSetup } from "codemirror";
import { javascript } from "@codemirror/lang-javascript";
import { Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { oneDark } from "@codemirror/theme-one-dark";
import { examples, type Example } from "./examples.ts";

interface RunResult {
  response?: { status: number; headers: Record<string, string>; body: string };
  error?: { name: string; message: string };
  outcome?: string;
  logs?: { level: string; message: string }[];
  cpuMs?: number;
  wallMs?: number;
  memoryBytes?: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const field = (id: string) => $<HTMLInputElement>(id);

const editor = new EditorView({
  parent: $("editor"),
  extensions: [
    basicSetup,
    javascript({ typescript: true }),
    oneDark,
    // Ctrl/Cmd+Enter runs, ahead of the default keymap's "insert blank line".
    Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => (void run(), true) }])),
  ],
});

function show(example: Example): void {
  editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: example.code } });
  field("method").value = example.request.method;
  field("path").value = example.request.path;
  field("body").value = example.request.body ?? "";
  field("cpu-ms").value = String(example.limits?.cpuMs ?? 200);
  field("memory-mb").value = String(example.limits?.memoryMb ?? 32);
  field("wall-ms").value = String(example.limits?.wallMs ?? 5000);
  field("allow-net").value = example.allowNet ?? "";
}

const picker = $<HTMLSelectElement>("example");
for (const e of examples) picker.append(new Option(e.title, e.id));
picker.addEventListener("change", () => show(examples.find((e) => e.id === picker.value)!));
const fromHash = examples.find((e) => `#${e.id}` === location.hash);
if (fromHash) picker.value = fromHash.id;
show(shared() ?? fromHash ?? examples[0]!);

/** The page as a link: code and fields in the address's fragment (never sent to the server). */
$("share").addEventListener("click", () => {
  const state: Example = {
    id: "shared", title: "Shared", code: editor.state.doc.toString(),
    request: { method: field("method").value, path: field("path").value, body: field("body").value },
    limits: { cpuMs: numberOf("cpu-ms"), memoryMb: numberOf("memory-mb"), wallMs: numberOf("wall-ms") },
    allowNet: field("allow-net").value,
  };
  history.replaceState(null, "", `#s=${toBase64Url(JSON.stringify(state))}`);
  void navigator.clipboard?.writeText(location.href).catch(() => {});
});

function shared(): Example | undefined {
  if (!location.hash.startsWith("#s=")) return undefined;
  try {
    return JSON.parse(fromBase64Url(location.hash.slice(3))) as Example;
  } catch {
    return undefined; // a damaged link: start from the first example
  }
}

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

field("token").value = localStorage.getItem("mayfly-token") ?? "";
$("run").addEventListener("click", () => void run());

function numberOf(id: string): number | undefined {
  const n = Number(field(id).value);
  return field(id).value && Number.isFinite(n) && n > 0 ? n : undefined;
}

async function run(): Promise<void> {
  const button = $<HTMLButtonElement>("run");
  button.disabled = true;
  $("result").dataset.state = "running";
  const token = field("token").value.trim();
  localStorage.setItem("mayfly-token", token);
  const method = field("method").value;
  const payload = {
    worker: {
      mainModule: "worker.ts",
      modules: { "worker.ts": editor.state.doc.toString() },
      limits: { cpuMs: numberOf("cpu-ms"), memoryMb: numberOf("memory-mb"), wallMs: numberOf("wall-ms") },
      allowNet: field("allow-net").value.split(",").map((s) => s.trim()).filter(Boolean),
    },
    request: {
      method,
      url: new URL(field("path").value || "/", "http://playground.local").href,
      body: method === "GET" || method === "HEAD" ? undefined : field("body").value,
    },
  };
  try {
    const res = await fetch("/v1/run", {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(payload),
    });
    render(await res.json() as RunResult);
  } catch (e) {
    render({ error: { name: "NetworkError", message: (e as Error).message } });
  } finally {
    button.disabled = false;
  }
}

function render(r: RunResult): void {
  $("result").dataset.state = r.error ? "failed" : "done";
  $("result").dataset.runs = String(Number($("result").dataset.runs ?? 0) + 1);
  $("status").textContent = r.response ? String(r.response.status) : "—";
  $("outcome").textContent = r.outcome ?? (r.error ? "error" : "ok");
  $("outcome").className = `badge ${r.outcome === "ok" ? "ok" : "bad"}`;
  $("cpu").textContent = r.cpuMs !== undefined ? `${r.cpuMs.toFixed(2)} ms` : "—";
  $("wall").textContent = r.wallMs !== undefined ? `${r.wallMs.toFixed(2)} ms` : "—";
  $("memory").textContent = r.memoryBytes ? `${(r.memoryBytes / 1024 / 1024).toFixed(2)} MB` : "—";
  $("error").textContent = r.error ? `${r.error.name}: ${r.error.message}` : "";
  $("response-headers").textContent = r.response ? Object.entries(r.response.headers).map(([k, v]) => `${k}: ${v}`).join("\n") : "";
  $("response-body").textContent = r.response ? pretty(r.response) : "";
  const logs = $("logs");
  logs.replaceChildren(...(r.logs ?? []).map((l) => {
    const li = document.createElement("li");
    li.className = `log ${l.level}`;
    li.textContent = `[${l.level}] ${l.message}`;
    return li;
  }));
}

/** JSON bodies indented for reading; anything else as it came. */
function pretty(res: NonNullable<RunResult["response"]>): string {
  if (!/json/.test(res.headers["content-type"] ?? "")) return res.body;
  try {
    return JSON.stringify(JSON.parse(res.body), null, 2);
  } catch {
    return res.body;
  }
}
