import { join } from "node:path";
import type TS from "typescript";
import type { TypeCheckDiagnostic } from "../../errors.ts";
import { resolveSpecifier } from "../../engine/executor/modules.ts";
import type { NormalizedModule } from "../worker-code.ts";
import { WORKERS_TYPES } from "./workers-types.ts";

/** Where the worker's modules are placed for the compiler when there is no install directory. */
const VIRTUAL_ROOT = "/__mayfly_worker__";
const AMBIENT = "__mayfly_workers_types.d.ts";
const LIBS = ["lib.es2023.d.ts", "lib.webworker.d.ts", "lib.webworker.iterable.d.ts", "lib.webworker.asynciterable.d.ts"];

let tsModule: Promise<typeof TS> | undefined;
/** typescript is ~9 MB of JavaScript: loaded on the first `typecheck: true`, not with the loader. */
function loadTs(): Promise<typeof TS> {
  return (tsModule ??= import("typescript").then((m) => (m as { default: typeof TS }).default));
}

/** Parsed library files (lib.*.d.ts, the ambient types) kept across checks: parsing them is most of the cost. */
const libCache = new Map<string, TS.SourceFile>();

/**
 * Type-checks the worker's TypeScript modules (strict) against Workers-like types: TypeScript's es2023
 * and webworker libs plus WORKERS_TYPES. Imports resolve as mayfly resolves them (between the worker's
 * own modules, `./x.js` finding `./x.ts`); non-code modules are typed by kind (`{ text }` a string,
 * `{ data }` an ArrayBuffer...); bare imports find the installed npm packages' types when `installDir`
 * is given. JavaScript modules are read (for their exports) but not checked. Returns the diagnostics
 * (none: the worker type-checks). Runs in the checker thread (./thread.ts), never on the host's loop.
 */
export async function checkWorker(modules: readonly NormalizedModule[], opts: { installDir?: string } = {}): Promise<TypeCheckDiagnostic[]> {
  const ts = await loadTs();
  const root = opts.installDir ?? VIRTUAL_ROOT;
  const names = new Set(modules.map((m) => m.name));
  const files = new Map<string, string>();
  const worker = new Set<string>();
  for (const m of modules) {
    const path = join(root, m.name);
    if (m.type === "esm" || m.type === "cjs") {
      // A module's name decides how it is read: .ts/.mts as TypeScript, anything else as JavaScript.
      const file = /\.m?ts$/.test(m.name) ? path : /\.(m?js|cjs)$/.test(m.name) ? path : `${path}.js`;
      files.set(file, m.content as string);
      if (/\.m?ts$/.test(m.name)) worker.add(file);
    } else {
      files.set(`${path}.d.ts`, declarationFor(m));
    }
  }
  const fileOf = (name: string) => {
    const path = join(root, name);
    return files.has(path) ? path : files.has(`${path}.js`) ? `${path}.js` : `${path}.d.ts`;
  };
  const ambient = join(root, AMBIENT);
  files.set(ambient, WORKERS_TYPES);
  const options: TS.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    customConditions: ["workerd", "worker", "browser"],
    lib: LIBS,
    types: [],
    strict: true,
    noEmit: true,
    allowJs: true,
    checkJs: false,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    resolveJsonModule: true,
    esModuleInterop: true,
    isolatedModules: true,
  };
  const libDir = ts.getDefaultLibFilePath(options).replace(/[^/\\]+$/, "");
  const base = ts.createCompilerHost(options, true);
  // The compiler reads the worker's modules, TypeScript's libs and the installed packages, nothing else:
  // an import of a host path (`/home/me/config.ts`) must not put the host's data into an error message.
  const readable = [libDir, ...(opts.installDir ? [`${join(opts.installDir, "node_modules")}/`] : [])];
  const allowed = (f: string) => files.has(f) || readable.some((d) => f.startsWith(d));
  const host: TS.CompilerHost = {
    ...base,
    fileExists: (f) => files.has(f) || (allowed(f) && base.fileExists(f)),
    readFile: (f) => files.get(f) ?? (allowed(f) ? base.readFile(f) : undefined),
    directoryExists: (d) => readable.some((r) => `${d}/`.startsWith(r) || r.startsWith(`${d}/`)) && (base.directoryExists?.(d) ?? true),
    getDirectories: (d) => (readable.some((r) => `${d}/`.startsWith(r)) ? base.getDirectories?.(d) ?? [] : []),
    realpath: (p) => p,
    getSourceFile: (f, lang, onError) => {
      if (!allowed(f)) return undefined;
      const own = files.get(f);
      if (own !== undefined && f !== ambient) return ts.createSourceFile(f, own, lang, true);
      const shared = f === ambient || f.startsWith(libDir);
      const key = `${f}\0${typeof lang === "object" ? lang.languageVersion : lang}`;
      const hit = shared ? libCache.get(key) : undefined;
      if (hit) return hit;
      const sf = f === ambient ? ts.createSourceFile(f, WORKERS_TYPES, lang, true) : base.getSourceFile(f, lang, onError);
      if (sf && shared) libCache.set(key, sf);
      return sf;
    },
    getCurrentDirectory: () => root,
    writeFile: () => {},
    // mayfly's own resolution between the worker's modules; the compiler's (node_modules) for the rest.
    resolveModuleNameLiterals: (literals, containingFile, _redirect, compilerOptions) => literals.map((lit) => {
      const from = containingFile.startsWith(`${root}/`) ? containingFile.slice(root.length + 1) : containingFile;
      const ownName = modules.find((m) => fileOf(m.name) === containingFile)?.name ?? from;
      const target = lit.text.includes(":") ? undefined : resolveSpecifier(lit.text, ownName, names);
      if (target) {
        const file = fileOf(target);
        const extension = file.endsWith(".d.ts") ? ts.Extension.Dts : file.endsWith(".ts") ? ts.Extension.Ts : file.endsWith(".mts") ? ts.Extension.Mts : ts.Extension.Js;
        return { resolvedModule: { resolvedFileName: file, extension, isExternalLibraryImport: false } };
      }
      return ts.resolveModuleName(lit.text, containingFile, compilerOptions, host);
    }),
  };
  const program = ts.createProgram({ rootNames: [...worker, ambient], options, host });
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || worker.has(d.file.fileName));
  return diagnostics.map((d) => toDiagnostic(ts, d, root));
}

function declarationFor(m: NormalizedModule): string {
  switch (m.type) {
    case "text": return "declare const value: string; export default value;";
    case "data": return "declare const value: ArrayBuffer; export default value;";
    case "wasm": return "declare const value: WebAssembly.Module; export default value;";
    default: return "declare const value: any; export default value;";
  }
}

function toDiagnostic(ts: typeof TS, d: TS.Diagnostic, root: string): TypeCheckDiagnostic {
  const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
  if (!d.file || d.start === undefined) return { file: "", line: 0, column: 0, code: d.code, message };
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  const file = d.file.fileName.startsWith(`${root}/`) ? d.file.fileName.slice(root.length + 1) : d.file.fileName;
  return { file, line: line + 1, column: character + 1, code: d.code, message };
}
