/** The playground's starting points: each one a complete worker and the request it is sent. */
export interface Example {
  id: string;
  title: string;
  code: string;
  request: { method: string; path: string; body?: string };
  limits?: { cpuMs?: number; memoryMb?: number; wallMs?: number };
  allowNet?: string;
}

export const examples: Example[] = [
  {
    id: "hello",
    title: "Hello",
    request: { method: "GET", path: "/?name=mayfly" },
    code: `// A worker: export default { fetch }. Every run gets a fresh V8 isolate.
export default {
  async fetch(request: Request): Promise<Response> {
    const name = new URL(request.url).searchParams.get("name") ?? "world";
    console.log("greeting", name);
    return new Response(\`Hello, \${name}!\\n\`);
  },
};
`,
  },
  {
    id: "json-api",
    title: "JSON API",
    request: { method: "POST", path: "/todos", body: '{ "title": "write a worker" }' },
    code: `// A tiny JSON API: routes with URLPattern, JSON in and out, Web Crypto.
interface Todo { id: string; title: string; done: boolean }

const create = new URLPattern({ pathname: "/todos" });
const show = new URLPattern({ pathname: "/todos/:id" });

export default {
  async fetch(request: Request): Promise<Response> {
    if (request.method === "POST" && create.test(request.url)) {
      const input = (await request.json()) as { title?: string };
      if (!input.title) return Response.json({ error: "title is required" }, { status: 400 });
      const todo: Todo = { id: crypto.randomUUID(), title: input.title, done: false };
      console.log("created", todo.id);
      return Response.json(todo, { status: 201 });
    }
    const match = show.exec(request.url);
    if (match) return Response.json({ id: match.pathname.groups.id, title: "(not stored)", done: false });
    return Response.json({ error: "not found" }, { status: 404 });
  },
};
`,
  },
  {
    id: "streaming",
    title: "Streaming",
    request: { method: "GET", path: "/" },
    code: `// A streamed response: chunks produced over time, upper-cased by a TransformStream.
export default {
  fetch(): Response {
    const encoder = new TextEncoder();
    let i = 0;
    const source = new ReadableStream<string>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (i === 5) return controller.close();
        console.log("chunk", i);
        controller.enqueue(\`line \${i++}\\n\`);
      },
    });
    const upper = new TransformStream<string, Uint8Array>({
      transform(chunk, controller) { controller.enqueue(encoder.encode(chunk.toUpperCase())); },
    });
    return new Response(source.pipeThrough(upper), { headers: { "content-type": "text/plain" } });
  },
};
`,
  },
  {
    id: "infinite-loop",
    title: "Infinite loop (CPU limit)",
    request: { method: "GET", path: "/" },
    limits: { cpuMs: 50 },
    code: `// This never returns. The CPU limit ends the run; nothing else is disturbed.
export default {
  fetch(): Response {
    console.log("starting to spin");
    for (;;) {}
  },
};
`,
  },
  {
    id: "egress",
    title: "Egress (denied by default)",
    request: { method: "GET", path: "/" },
    code: `// No network unless the "allowed hosts" field names the host.
export default {
  async fetch(): Promise<Response> {
    try {
      const res = await fetch("https://example.com/");
      return new Response(\`example.com answered \${res.status}\\n\`);
    } catch (e) {
      return new Response(\`refused: \${(e as Error).message}\\n\`, { status: 502 });
    }
  },
};
`,
  },
];
