/**
 * The bridge from the sandbox's network namespace to the host's proxy: a small Node process that
 * enters only the sandbox's user and network namespaces (nsenter; it stays in the host's mount
 * namespace and cgroup, and is not one of the command's processes), listens on 127.0.0.1:3128 there,
 * and pipes each connection to the proxy's unix socket. The command starts only once it listens
 * (bwrap --block-fd). Nothing runs inside the sandbox's file system for it, so the sandbox needs no
 * Node of its own.
 */
import { spawn, type ChildProcess } from "node:child_process";

export const PROXY_PORT = 3128;

const SOURCE = `
const net = require("node:net");
const [socketPath, port] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(socketPath);
  c.pipe(u); u.pipe(c);
  c.on("error", () => u.destroy()); u.on("error", () => c.destroy());
  c.on("close", () => u.destroy()); u.on("close", () => c.destroy());
}).listen(Number(port), "127.0.0.1", () => process.stdout.write("ready\\n"));
// Its stdin is a pipe from the host process: when that goes (the host died), so does the bridge.
process.stdin.on("end", () => process.exit(0)).on("error", () => process.exit(0)).resume();
`;

/** Starts the bridge in the namespaces of `pid` (bwrap's child); resolves once it listens. */
export function startForwarder(pid: number, socketPath: string): Promise<ChildProcess> {
  const child = spawn("nsenter", [
    `--target=${pid}`, "--user", "--net", "--preserve-credentials", "--",
    process.execPath, "--max-old-space-size=32", "-e", SOURCE, socketPath, String(PROXY_PORT),
  ], { stdio: ["pipe", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr!.on("data", (d: Buffer) => void (err += d.toString().slice(0, 2000)));
    child.stdout!.once("data", () => resolve(child));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the network bridge exited (${code}): ${err.trim()}`)));
  });
}
