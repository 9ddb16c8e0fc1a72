/**
 * The sandbox's only way out when it is granted a network: an HTTP proxy on a unix socket in the
 * host, in front of an egress gateway. Plain `http://` requests (`GET http://host/path`) go through
 * the gateway's fetch(), so every rule applies (allow-list, methods, injected headers, private
 * addresses, sizes, redirects); CONNECT tunnels (https) are allowed by the gateway's
 * authorizeTunnel() and connected to the address it checked. A refusal answers 403 with the
 * gateway's reason; each is also kept, for the exec's result.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import type { Duplex } from "node:stream";
import { EgressDeniedError } from "../egress/errors.ts";
import type { EgressGateway } from "../egress/gateway.ts";

/** A request the gateway refused: what was asked and which check refused it. */
export interface EgressRefusal { method: string; url: string; rule: string; reason: string }

/** Request headers that are about the hop to the proxy, not the request (RFC 9110 §7.6.1); Expect was answered by the proxy already. */
const HOP = new Set(["expect", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"]);

export interface SandboxProxy {
  refusals: EgressRefusal[];
  close(): Promise<void>;
}

/** `onRefusal` hears each refused request as it happens (the sandbox then stops the command). */
export function startProxy(gateway: EgressGateway, socketPath: string, onRefusal: (e: EgressDeniedError) => void = () => {}): Promise<SandboxProxy> {
  const refusals: EgressRefusal[] = [];
  const open = new Set<Socket | Duplex>();
  const refuse = (method: string, url: string, e: EgressDeniedError) => {
    refusals.push({ method, url, rule: e.rule, reason: e.message });
    onRefusal(e);
    return e.message;
  };

  const server = createServer((req, res) => void forward(req, res).catch((e: unknown) => {
    const denied = e instanceof EgressDeniedError;
    const message = denied ? refuse(req.method ?? "GET", req.url ?? "", e) : `mayfly proxy: ${(e as Error)?.message ?? e}`;
    if (res.headersSent) return void res.destroy();
    res.writeHead(denied ? 403 : 502, { "content-type": "text/plain", ...(denied ? { "x-mayfly-egress-denied": e.rule } : {}) }).end(`${message}\n`);
  }));

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "";
    if (!/^https?:\/\//i.test(url)) throw new TypeError("only absolute http:// URLs (or CONNECT) are proxied");
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      if (!HOP.has(name)) headers.push([name, req.rawHeaders[i + 1]!]);
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(url, {
      method: req.method, headers, body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null, duplex: "half",
    } as RequestInit);
    const response = await gateway.fetch(request);
    // fetch() decoded the body, so its encoding and length no longer describe what is sent on.
    const out = [...response.headers].filter(([k]) => k !== "content-encoding" && k !== "content-length" && k !== "transfer-encoding");
    res.writeHead(response.status, response.statusText, out);
    if (!response.body) return void res.end();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
    }
    res.end();
  }

  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => client.destroy());
    const target = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? "");
    const fail = (status: string, message: string) => client.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${message}\n`);
    if (!target) return fail("400 Bad Request", "CONNECT needs host:port");
    gateway.authorizeTunnel(target[1]!, Number(target[2])).then((address) => {
      const upstream = connect({ host: address.address, port: Number(target[2]), family: address.family });
      open.add(upstream);
      upstream.on("close", () => { open.delete(upstream); client.destroy(); });
      upstream.on("error", () => fail("502 Bad Gateway", "could not connect"));
      upstream.on("connect", () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length > 0) upstream.write(head);
        client.pipe(upstream).on("error", () => upstream.destroy());
        upstream.pipe(client);
      });
      client.on("close", () => upstream.destroy());
    }, (e: unknown) => {
      if (e instanceof EgressDeniedError) fail(`403 Forbidden\r\nx-mayfly-egress-denied: ${e.rule}`, refuse("CONNECT", req.url ?? "", e));
      else fail("502 Bad Gateway", String((e as Error)?.message ?? e));
    });
  });
  server.on("connection", (socket) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve({
      refusals,
      close: () => new Promise<void>((done) => {
        for (const s of open) s.destroy();
        server.close(() => done());
      }),
    }));
  });
}
