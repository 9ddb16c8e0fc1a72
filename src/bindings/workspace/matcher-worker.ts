/**
 * The thread that runs guest-supplied patterns for workspaces (see matcher.ts): glob matching, grep's
 * regular expressions and diffs. Nothing here touches storage: it gets text and gives answers.
 */
import { parentPort } from "node:worker_threads";
import { posix } from "node:path";
import { createTwoFilesPatch } from "diff";

type Request =
  | { id: number; op: "glob"; paths: string[]; pattern: string }
  | { id: number; op: "compile"; source: string; flags: string }
  | { id: number; op: "test"; lines: string[] }
  | { id: number; op: "diff"; a: { label: string; text: string }; b: { label: string; text: string } };

let re: RegExp | undefined;

function answer(req: Request): unknown {
  switch (req.op) {
    case "glob":
      return req.paths.filter((p) => posix.matchesGlob(p, req.pattern));
    case "compile":
      re = new RegExp(req.source, req.flags);
      return true;
    case "test":
      return req.lines.map((l) => re!.test(l));
    case "diff":
      return createTwoFilesPatch(req.a.label, req.b.label, req.a.text, req.b.text, undefined, undefined, { context: 3 });
  }
}

parentPort!.on("message", (req: Request) => {
  try {
    parentPort!.postMessage({ id: req.id, ok: true, value: answer(req) });
  } catch (e) {
    parentPort!.postMessage({ id: req.id, ok: false, message: (e as Error)?.message ?? String(e) });
  }
});
