/**
 * Host-to-host forwarding of actor calls: the internal route an owner answers on, and the client a
 * non-owner sends with. Both ends share the cluster secret. Calls and their results cross as V8
 * serialization (the same structured clone the actor's own RPC uses); a fetch crosses buffered.
 */
import { serialize, deserialize } from "node:v8";
import { timingSafeEqual } from "node:crypto";
import type { Hono } from "hono";
import type { ActorTarget, PlacedNamespace } from "../actors/placement.ts";
import { MayflyError, NotOwnerError } from "../errors.ts";

export const FORWARD_PREFIX = "/_mayfly/cluster/actors";
const SECRET_HEADER = "x-mayfly-cluster-secret";
const NAME_HEADER = "x-mayfly-actor-name";
/** 421 Misdirected Request: this host does not own the actor; the sender asks where it is again. */
const NOT_OWNER = 421;

export type ForwardOp =
  | { kind: "call"; method: string; args: unknown[] }
  | { kind: "fetch"; url: string; method: string; headers: [string, string][]; body: Uint8Array | null };

type Reply =
  | { ok: true; value?: unknown; response?: { status: number; statusText: string; headers: [string, string][]; body: Uint8Array | null } }
  | { ok: false; error: { name: string; message: string } };

/** Runs `op` on a target here (the owner's side, or a sender that became the owner). */
export async function runOp(target: ActorTarget, op: ForwardOp): Promise<unknown> {
  if (op.kind === "call") return target.call(op.method, op.args);
  return target.fetch(new Request(op.url, { method: op.method, headers: op.headers, body: op.body as BodyInit | null }));
}

/** A fetch as a ForwardOp: its body read now (it may be sent again, to another host). */
export async function fetchOp(request: Request): Promise<ForwardOp> {
  const body = request.body ? new Uint8Array(await request.arrayBuffer()) : null;
  return { kind: "fetch", url: request.url, method: request.method, headers: [...request.headers], body };
}

/** Whether the op certainly did not run: the owner refused it, or no connection was made. */
export function notDelivered(error: unknown): boolean {
  if (error instanceof NotOwnerError) return true;
  const code = (error as { cause?: { code?: string } })?.cause?.code;
  return code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENOTFOUND" || code === "UND_ERR_CONNECT_TIMEOUT";
}

/** Sends `op` to the owner at `address` once. */
export async function sendOp(address: string, secret: string, namespace: string, hex: string, name: string | undefined, op: ForwardOp): Promise<unknown> {
  const res = await fetch(`http://${address}${FORWARD_PREFIX}/${encodeURIComponent(namespace)}/${hex}`, {
    method: "POST",
    headers: { [SECRET_HEADER]: secret, "content-type": "application/octet-stream", ...(name !== undefined ? { [NAME_HEADER]: encodeURIComponent(name) } : {}) },
    body: serialize(op),
  });
  if (res.status === NOT_OWNER) {
    await res.body?.cancel();
    throw new NotOwnerError(`${address} does not own the actor.`);
  }
  if (res.status !== 200) throw new MayflyError(`Forwarding to ${address} failed: ${res.status} ${await res.text()}`);
  const reply = deserialize(new Uint8Array(await res.arrayBuffer())) as Reply;
  if (!reply.ok) throw Object.assign(new Error(reply.error.message), { name: reply.error.name });
  if (op.kind === "call") return reply.value;
  const r = reply.response!;
  return new Response(r.body as BodyInit | null, { status: r.status, statusText: r.statusText, headers: r.headers });
}

/** The owner's side: POST /_mayfly/cluster/actors/:ns/:hex, answered by the namespace's local instance. */
export function mountForwardRoute(app: Hono<any>, secret: string, namespaces: (name: string) => PlacedNamespace | undefined): void {
  const expected = Buffer.from(secret);
  app.post(`${FORWARD_PREFIX}/:ns/:hex`, async (c) => {
    const given = Buffer.from(c.req.header(SECRET_HEADER) ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return c.json({ error: { name: "Unauthorized", message: "Wrong cluster secret." } }, 401);
    const ns = namespaces(c.req.param("ns")!);
    if (!ns) return c.json({ error: { name: "NotFound", message: "No such actor namespace on this host." } }, 404);
    const nameHeader = c.req.header(NAME_HEADER);
    const op = deserialize(new Uint8Array(await c.req.arrayBuffer())) as ForwardOp;
    let target: ActorTarget;
    try {
      target = await ns.localTarget(c.req.param("hex")!, nameHeader === undefined ? undefined : decodeURIComponent(nameHeader));
    } catch (e) {
      if (e instanceof NotOwnerError) return c.body(null, NOT_OWNER);
      return reply(c, { ok: false, error: describe(e) });
    }
    try {
      const value = await runOp(target, op);
      if (op.kind === "call") return reply(c, { ok: true, value });
      const res = value as Response;
      return reply(c, { ok: true, response: { status: res.status, statusText: res.statusText, headers: [...res.headers], body: res.body ? new Uint8Array(await res.arrayBuffer()) : null } });
    } catch (e) {
      return reply(c, { ok: false, error: describe(e) });
    }
  });
}

function describe(e: unknown): { name: string; message: string } {
  const err = e as Error;
  return { name: String(err?.name ?? "Error"), message: String(err?.message ?? err) };
}

function reply(c: { body(data: Uint8Array, status: 200, headers: Record<string, string>): Response }, r: Reply): Response {
  let bytes: Uint8Array;
  try {
    bytes = serialize(r);
  } catch (e) {
    bytes = serialize({ ok: false, error: { name: "DataCloneError", message: (e as Error).message } });
  }
  return c.body(bytes, 200, { "content-type": "application/octet-stream" });
}
