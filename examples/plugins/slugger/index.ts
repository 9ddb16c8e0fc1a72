// An example plugin (see README, "Plugins"). Its manifest grants it one KV namespace of its own and
// nothing else: no network, no workspace, no tools. The host calls `hooks["content:beforeSave"]` with
// each post about to be saved; what it returns is the post the next plugin (and the host) gets.
// GET /p/slugger/stats answers how many posts it has seen.
interface Env { COUNTS: { get(key: string): Promise<string | null>; put(key: string, value: string): Promise<void> } }
interface Post { title: string; slug?: string }

export default {
  hooks: {
    async "content:beforeSave"(post: Post, env: Env): Promise<Post> {
      if (typeof post?.title !== "string" || !post.title.trim()) throw new TypeError("A post needs a title.");
      const saves = Number((await env.COUNTS.get("saves")) ?? 0) + 1;
      await env.COUNTS.put("saves", String(saves));
      const slug = post.title.normalize("NFKD").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
      return { ...post, slug };
    },
  },
  async fetch(_request: Request, env: Env): Promise<Response> {
    return Response.json({ saves: Number((await env.COUNTS.get("saves")) ?? 0) });
  },
};
