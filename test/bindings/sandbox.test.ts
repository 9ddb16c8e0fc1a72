import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { egress, sandbox, sandboxAvailable, SandboxUnavailableError, workspace } from "../../src/index.ts";
import { createCgroup } from "../../src/bindings/sandbox/cgroup.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-sandbox-");
// Each worker awaits several commands (each a new sandbox, some with a network bridge to start): on a
// busy machine that can outlast the default wall limit, which is not what these tests are about.
const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env, { limits: { wallMs: 120_000 } });

const availability = await sandboxAvailable();
const unavailable = availability.available ? false : `the OS sandbox cannot run here: ${availability.reason}`;
// Memory and process limits that stop a command with a typed error need a cgroup we may create; with
// rlimits alone the command just sees failed allocations and forks (see the README).
const probe = createCgroup({ memoryBytes: 64 * 2 ** 20, processes: 16 });
await probe?.remove();
const noCgroup = unavailable || (probe ? false : "no memory/pids cgroup can be created here, so memory and process limits are rlimits only");

// The commands the tests run must be in the sandbox's root (the host's /usr).
const needs = (program: string) => (existsSync(`/usr/bin/${program}`) ? false : `${program} is not installed in /usr/bin`);
const repoDir = fileURLToPath(new URL("../..", import.meta.url));
let n = 0;
const fresh = (mode: "read" | "read-write" = "read-write") => workspace({ name: `sbx-${process.pid}-${n++}`, dataDir, mode });

/** Runs `body` in a worker whose env has the sandbox as SH and the same workspace as FS. */
function inSandbox(body: string, ws = fresh(), limits = {}) {
  return run(body, { SH: sandbox({ workspace: ws, limits: { wallMs: 20_000, ...limits } }), FS: ws });
}

/** What a worker sees when `exec` fails: the error's name and message (all that crosses the boundary). */
const tryExec = `
  const attempt = async (cmd, args, opts) => {
    try { return { ok: await env.SH.exec(cmd, args, opts) } } catch (e) { return { name: e.name, message: e.message } }
  };`;

describe("OS sandbox (Tier 4): commands in bubblewrap, the workspace at /workspace", { skip: unavailable }, () => {
  test("git init, add, commit in the sandbox leave a repository the next JavaScript run reads, and the next exec's git log shows", { skip: needs("git") }, async () => {
    const ws = fresh();
    await ws.writeFile("README.md", "# hello\n");
    const git = ["-c", "user.name=Mayfly", "-c", "user.email=m@example.com"];
    const first = await inSandbox(`
      const r = await env.SH.exec("sh", ["-c", 'git -c init.defaultBranch=master init -q . && git ${git.join(" ")} add README.md && git ${git.join(" ")} commit -q -m "first commit" && echo done']);
      return Response.json(r);`, ws);
    assert.equal(first.exitCode, 0, first.stderr);
    assert.equal(first.stdout, "done\n");
    assert.ok(first.workspace.written.includes(".git/HEAD"));

    // A fresh isolate with only the workspace binding sees what git wrote.
    const next = await run(`
      return Response.json({ head: await env.FS.readFile(".git/HEAD", "utf8"), refs: await env.FS.readdir(".git/refs/heads"), readme: await env.FS.readFile("README.md", "utf8") });`,
    { FS: ws });
    assert.deepEqual(next, { head: "ref: refs/heads/master\n", refs: ["master"], readme: "# hello\n" });

    const log = await inSandbox(`return Response.json(await env.SH.exec("git", ["log", "--format=%s by %an"]));`, ws);
    assert.deepEqual([log.exitCode, log.stdout], [0, "first commit by Mayfly\n"]);
  });

  test("stdin, cwd, env and deletions: files the command removes are gone from the workspace", async () => {
    const ws = fresh();
    await ws.writeFile("sub/old.txt", "old");
    await ws.writeFile("keep.txt", "keep");
    const out = await inSandbox(`
      const r = await env.SH.exec("sh", ["-c", 'pwd; cat > new.txt; rm old.txt; echo "$GREETING"'], { stdin: "from stdin", cwd: "sub", env: { GREETING: "hey" } });
      return Response.json({ r, files: await env.FS.readdir("", { recursive: true }), text: await env.FS.readFile("sub/new.txt", "utf8") });`, ws);
    assert.equal(out.r.stdout, "/workspace/sub\nhey\n");
    assert.deepEqual(out.r.workspace, { written: ["sub/new.txt"], deleted: ["sub/old.txt"], skipped: [] });
    assert.deepEqual(out.files, ["keep.txt", "sub", "sub/new.txt"]);
    assert.equal(out.text, "from stdin");
  });

  test("an endless loop is stopped by cpuMs, and the next exec works", async () => {
    const out = await inSandbox(`${tryExec}
      return Response.json({ loop: await attempt("sh", ["-c", "while :; do :; done"]), after: await attempt("echo", ["still here"]) });`, fresh(), { cpuMs: 500 });
    assert.equal(out.loop.name, "SandboxLimitError");
    assert.match(out.loop.message, /cpuMs limit \(500\)/);
    assert.equal(out.after.ok.stdout, "still here\n");
  });

  test("a fork bomb is stopped by the process limit; a memory hog by the memory limit; the host is unaffected", { skip: noCgroup }, async () => {
    const out = await inSandbox(`${tryExec}
      return Response.json({
        fork: await attempt("sh", ["-c", "f() { f | f & }; f; sleep 10"]),
        memory: await attempt("sh", ["-c", "head -c 500000000 /dev/zero | tail > /dev/null"]),
        after: await attempt("sh", ["-c", "echo alive"]),
      });`, fresh(), { processes: 32, memoryMb: 64 });
    assert.equal(out.fork.name, "SandboxLimitError");
    assert.match(out.fork.message, /processes limit \(32\)/);
    assert.equal(out.memory.name, "SandboxLimitError");
    assert.match(out.memory.message, /memoryMb limit \(64\)/);
    assert.equal(out.after.ok.stdout, "alive\n");
  });

  test("a file past fileSizeMb stops the command; nothing of a stopped command reaches the workspace", async () => {
    const ws = fresh();
    const out = await inSandbox(`${tryExec}
      return Response.json({ big: await attempt("sh", ["-c", "echo partial > small.txt; head -c 3000000 /dev/zero > big.bin"]), files: await env.FS.readdir("") });`, ws, { fileSizeMb: 1 });
    assert.equal(out.big.name, "SandboxLimitError");
    assert.match(out.big.message, /fileSizeMb limit \(1\)/);
    assert.deepEqual(out.files, []);
  });

  test("the wall timeout kills the whole process tree, background processes included", async () => {
    const out = await inSandbox(`${tryExec}
      return Response.json(await attempt("sh", ["-c", "sleep 31337 & sleep 31337 & wait"], { timeoutMs: 500 }));`);
    assert.equal(out.name, "SandboxLimitError");
    assert.match(out.message, /wallMs limit \(500\)/);
    await new Promise((r) => setTimeout(r, 200));
    const sleepers = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes("31337");
      } catch {
        return false;
      }
    });
    assert.deepEqual(sleepers, []);
  });

  test("no network: a name does not resolve and an address is unreachable", { skip: needs("curl") }, async () => {
    const out = await inSandbox(`
      return Response.json({
        name: await env.SH.exec("curl", ["-sS", "--max-time", "5", "http://example.com/"]),
        address: await env.SH.exec("curl", ["-sS", "--max-time", "5", "http://1.1.1.1/"]),
      });`);
    assert.equal(out.name.exitCode, 6, out.name.stderr); // CURLE_COULDNT_RESOLVE_HOST
    assert.match(out.name.stderr, /Could not resolve host/);
    assert.equal(out.address.exitCode, 7, out.address.stderr); // CURLE_COULDNT_CONNECT
  });

  test('with a network grant and onEgressRefused "report", HTTP goes only through the egress gateway: allowed origins answer, others are refused (403, in egressRefused)', { skip: needs("curl") }, async () => {
    const seen: string[] = [];
    const server = createServer(async (req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers["x-injected"] ?? "-"}`);
      let size = 0;
      for await (const chunk of req) size += (chunk as Buffer).length;
      res.end(req.method === "POST" ? `got ${size} bytes\n` : `hello from ${req.url}\n`);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const plain = egress({ allow: [{ origin: `http://127.0.0.1:${port}`, allowPrivateAddresses: true, headers: { "x-injected": "secret" } }] });
    const tunnelled = egress({ allow: [{ origin: `http://127.0.0.1:${port}`, allowPrivateAddresses: true }] });
    try {
      const script = `return Response.json({
        allowed: await env.SH.exec("curl", ["-sS", "-f", "http://127.0.0.1:${port}/ok"]),
        denied: await env.SH.exec("curl", ["-sS", "-f", "http://example.com/"]),
        https: await env.SH.exec("curl", ["-sS", "https://example.com/"]),
        tunnel: await env.SH.exec("curl", ["-sS", "-f", "--proxytunnel", "http://127.0.0.1:${port}/tunnel"]),
        direct: await env.SH.exec("curl", ["-sS", "--noproxy", "*", "--max-time", "5", "http://127.0.0.1:${port}/direct"]),
        // Over 1 MiB, curl asks "Expect: 100-continue" of the proxy; the body streams through the gateway.
        post: await env.SH.exec("sh", ["-c", "head -c 2000000 /dev/zero > /tmp/body && curl -sS -f --data-binary @/tmp/body http://127.0.0.1:${port}/post"]),
      });`;
      const a = await run(script, { SH: sandbox({ workspace: fresh(), network: plain, onEgressRefused: "report" }) });
      assert.equal(a.allowed.stdout, "hello from /ok\n");
      assert.equal(a.denied.exitCode, 22);
      assert.deepEqual(a.denied.egressRefused.map((r: { rule: string; url: string }) => [r.rule, r.url]), [["allow-list", "http://example.com/"]]);
      assert.equal(a.https.exitCode, 56); // CONNECT refused
      assert.deepEqual(a.https.egressRefused.map((r: { rule: string }) => r.rule), ["allow-list"]);
      // A rule that injects headers cannot hold a tunnel to them, so no tunnel is opened for it.
      assert.deepEqual(a.tunnel.egressRefused.map((r: { rule: string }) => r.rule), ["tunnel"]);
      // Past the proxy there is no route: the host's loopback is not the sandbox's.
      assert.equal(a.direct.exitCode, 7, a.direct.stderr);
      assert.equal(a.post.stdout, "got 2000000 bytes\n", a.post.stderr);
      const b = await run(script, { SH: sandbox({ workspace: fresh(), network: tunnelled, onEgressRefused: "report" }) });
      assert.equal(b.tunnel.stdout, "hello from /tunnel\n");
      assert.deepEqual(seen, ["GET /ok secret", "POST /post secret", "GET /ok -", "GET /tunnel -", "POST /post -"]);
    } finally {
      server.close();
    }
  });

  test("by default, curl to a denied host stops the command with EgressDeniedError; nothing it wrote is kept, the next command runs", { skip: needs("curl") }, async () => {
    const server = createServer((_req, res) => res.end("ok\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const ws = fresh();
    try {
      const out = await run(`
        let denied;
        try {
          await env.SH.exec("sh", ["-c", "echo partial > /workspace/left.txt; curl -sS http://example.com/; sleep 30; echo never"]);
        } catch (e) { denied = { name: e.name, message: e.message }; }
        const after = await env.SH.exec("curl", ["-sS", "http://127.0.0.1:${port}/fine"]);
        return Response.json({ denied, after: after.stdout });`,
        { SH: sandbox({ workspace: ws, network: egress({ allow: [{ origin: `http://127.0.0.1:${port}`, allowPrivateAddresses: true }] }) }) });
      assert.equal(out.denied.name, "EgressDeniedError");
      assert.match(out.denied.message, /example\.com.*allow-list|allow-list.*example\.com/);
      assert.equal(out.after, "ok\n");
      await assert.rejects(ws.readFile("left.txt"), { code: "ENOENT" });
    } finally {
      server.close();
    }
  });

  test("the host's files outside the system root are not there, its secrets not readable, and / not writable", async () => {
    const out = await inSandbox(`
      const sh = (script) => env.SH.exec("sh", ["-c", script]);
      return Response.json({
        root: await sh("ls /root"), repo: await sh("cat ${repoDir}package.json"), shadow: await sh("cat /etc/shadow"),
        slash: await sh("touch /evil"), usr: await sh("touch /usr/evil"), tmp: await sh("touch /tmp/ok && echo ok"),
        dev: await sh("ls /dev"), pids: await sh("ls /proc | grep -c '^[0-9]*$'"),
      });`);
    assert.equal(out.dev.stdout, "fd\nfull\nnull\nrandom\nshm\nstderr\nstdin\nstdout\nurandom\nzero\n");
    // Its own pid namespace: bwrap's init, the shell, ls and grep, nothing of the host.
    assert.ok(Number(out.pids.stdout) <= 4, out.pids.stdout);
    assert.match(out.root.stderr, /No such file or directory/);
    assert.match(out.repo.stderr, /No such file or directory/);
    assert.match(out.shadow.stderr, /Permission denied|No such file/);
    assert.match(out.slash.stderr, /Read-only file system/);
    assert.match(out.usr.stderr, /Read-only file system/);
    assert.equal(out.tmp.stdout, "ok\n");
    assert.notEqual(out.root.exitCode, 0);
  });

  test("a seccomp filter: no nested user namespaces, no keyrings, no mounts; ordinary programs unaffected", { skip: needs("unshare") }, async () => {
    const out = await inSandbox(`
      const sh = (script) => env.SH.exec("sh", ["-c", script]);
      return Response.json({ status: await sh("grep '^Seccomp:' /proc/self/status"), userns: await sh("unshare -U true"), mount: await sh("mount -t tmpfs none /tmp"), pipe: await sh("echo a | tr a b") });`);
    assert.equal(out.status.stdout, "Seccomp:\t2\n"); // filtered
    assert.match(out.userns.stderr, /Operation not permitted/);
    assert.notEqual(out.mount.exitCode, 0);
    assert.equal(out.pipe.stdout, "b\n");
  });

  test("a read-only workspace is mounted read-only and nothing is written back", async () => {
    const ws = fresh("read");
    await ws.writeFile("a.txt", "a");
    const out = await inSandbox(`return Response.json(await env.SH.exec("sh", ["-c", "cat a.txt; echo x > b.txt"]));`, ws);
    assert.equal(out.stdout, "a");
    assert.match(out.stderr, /Read-only file system/);
    assert.deepEqual((await ws.list()).map((e) => e.path), ["a.txt"]);
  });

  test("what is written back is bounded (ENOSPC, nothing written), and /tmp is a tmpfs of at most memoryMb", async () => {
    const ws = fresh();
    const out = await run(`
      const r = {};
      try { await env.SH.exec("sh", ["-c", "head -c 3000 /dev/zero > a.bin"]) } catch (e) { r.big = [e.name, e.message.slice(0, 6)] }
      r.files = await env.FS.readdir("");
      try { r.tmp = (await env.SH.exec("sh", ["-c", "head -c 40000000 /dev/zero > /tmp/fill"])).stderr } catch (e) { r.tmp = e.message }
      return Response.json(r);`,
    { SH: sandbox({ workspace: ws, maxWriteBackBytes: 2000, limits: { memoryMb: 32, fileSizeMb: 100 } }), FS: ws });
    assert.deepEqual(out.big, ["WorkspaceError", "ENOSPC"]);
    assert.deepEqual(out.files, []);
    // tmpfs pages are memory: a memory cgroup stops the command first; without one, the tmpfs is full.
    assert.match(out.tmp, noCgroup ? /No space left on device/ : /memoryMb limit \(32\)/);
  });

  test("spawn streams stdout while the command runs; output nobody reads holds the command until its wall limit", async () => {
    const out = await inSandbox(`
      const p = await env.SH.spawn("sh", ["-c", "echo one; sleep 1; echo two >&2; echo three"]);
      let settled = false;
      p.exited.then(() => (settled = true), () => (settled = true));
      const reader = p.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      const settledAtFirst = settled;
      let rest = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
      const result = await p.exited;
      const unread = await env.SH.spawn("yes", [], { timeoutMs: 500 });
      const stalled = await unread.exited.then((r) => r, (e) => [e.name, e.message]);
      return Response.json({ first, settledAtFirst, rest, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, stalled });`);
    assert.deepEqual(out, {
      first: "one\n", settledAtFirst: false, rest: "three\n", exitCode: 0, stdout: "", stderr: "two\n",
      stalled: ["SandboxLimitError", "The sandboxed command exceeded its wallMs limit (500) and was stopped."],
    });
  });

  test("output beyond maxOutputBytes is dropped and flagged", async () => {
    const ws = fresh();
    const out = await run(`return Response.json(await env.SH.exec("sh", ["-c", "head -c 5000 /dev/zero | tr '\\\\0' x"]));`,
      { SH: sandbox({ workspace: ws, maxOutputBytes: 1000 }) });
    assert.equal(out.stdout, "x".repeat(1000));
    assert.equal(out.stdoutTruncated, true);
    assert.equal(out.stderrTruncated, false);
  });
});

describe("OS sandbox: grants and options", () => {
  test("without the grant there is no env.SH", async () => {
    const out = await run(`return Response.json({ sh: typeof env.SH, keys: Object.keys(env) });`, { FS: fresh() });
    assert.deepEqual(out, { sh: "undefined", keys: ["FS"] });
  });

  test("options are checked: network, unknown or out-of-range limits, env names", () => {
    const ws = fresh();
    assert.throws(() => sandbox({ workspace: ws, network: "all" as never }), TypeError);
    assert.throws(() => sandbox({ workspace: ws, env: { "A=B": "x" } }), TypeError);
    assert.ok(sandbox({ workspace: ws, network: { allow: [] } }));
    assert.throws(() => sandbox({ workspace: ws, limits: { memoryMb: 0 } }), RangeError);
    assert.throws(() => sandbox({ workspace: ws, limits: { disk: 1 } as never }), TypeError);
    assert.throws(() => sandbox({ workspace: {} as never }), TypeError);
  });

  test("a worker's exec arguments are checked before anything runs", async () => {
    const out = await run(`
      const codes = [];
      for (const a of [[""], ["ls", "-la"], ["ls", [1]], ["ls", [], { stdin: 5 }], ["ls", [], { timeoutMs: -1 }], ["ls", [], { env: { "A B": "x" } }]]) {
        try { await env.SH.exec(...a); codes.push("ran") } catch (e) { codes.push(e.name) }
      }
      try { await env.SH.nope() } catch (e) { codes.push(e.name) }
      return Response.json(codes);`, { SH: sandbox({ workspace: fresh(), bwrap: "/nonexistent/bwrap" }) });
    assert.deepEqual(out, ["TypeError", "TypeError", "TypeError", "TypeError", "RangeError", "TypeError", "TypeError"]);
  });

  test("a tunnel is checked like a fetch: allow-list, per-request conditions, private addresses", async () => {
    const decisions: unknown[] = [];
    const gw = egress({
      allow: [{ origin: "http://127.0.0.1:9" }, { origin: "https://api.example.com", methods: ["GET"] }, { origin: "https://ok.example.com" }],
      lookup: async () => [{ address: "93.184.215.14", family: 4 }],
      onDecision: (d) => decisions.push([d.method, d.url, d.allowed, d.rule]),
    });
    const rule = (p: Promise<unknown>) => p.then(() => "allowed", (e: { name: string; rule: string }) => `${e.name}:${e.rule}`);
    assert.equal(await rule(gw.authorizeTunnel("127.0.0.1", 9)), "EgressDeniedError:private-address");
    assert.equal(await rule(gw.authorizeTunnel("api.example.com", 443)), "EgressDeniedError:tunnel");
    assert.equal(await rule(gw.authorizeTunnel("other.example.com", 443)), "EgressDeniedError:allow-list");
    assert.equal(await rule(gw.authorizeTunnel("ok.example.com", 8443)), "EgressDeniedError:allow-list");
    assert.deepEqual(await gw.authorizeTunnel("ok.example.com", 443), { address: "93.184.215.14", family: 4 });
    assert.deepEqual(decisions.at(-1), ["CONNECT", "ok.example.com:443", true, undefined]);
  });

  test("where bubblewrap cannot run, exec fails with SandboxUnavailableError saying why", async () => {
    const sh = sandbox({ workspace: fresh(), bwrap: "/nonexistent/bwrap" });
    await assert.rejects(sh.exec("true"), (e: unknown) => e instanceof SandboxUnavailableError && /not found/.test(e.message));
    const out = await run(`try { await env.SH.exec("true") } catch (e) { return Response.json([e.name, e.message]) }`, { SH: sh });
    assert.equal(out[0], "SandboxUnavailableError");
  });
});
