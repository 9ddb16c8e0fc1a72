// A named worker with a KV namespace: PUT /w/notes/<key> stores the body, GET reads it back,
// GET /w/notes/ lists the keys. The isolate is fresh each time; the data lives in .mayfly/data.
interface Env { NOTES: KVNamespaceLike }
interface KVNamespaceLike {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  list(options?: { prefix?: string }): Promise<{ keys: { name: string }[] }>;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
    if (!key) return Response.json((await env.NOTES.list()).keys.map((k) => k.name));
    if (request.method === "PUT") {
      await env.NOTES.put(key, await request.text());
      return new Response(null, { status: 204 });
    }
    const value = await env.NOTES.get(key);
    return value === null ? new Response("not found\n", { status: 404 }) : new Response(value);
  },
};
