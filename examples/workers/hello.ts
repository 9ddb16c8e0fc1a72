// A named worker (examples/mayfly.config.json): served at /w/hello/*, a fresh isolate per request.
interface Env { GREETING: string }

export default {
  fetch(request: Request, env: Env): Response {
    const url = new URL(request.url);
    console.log("hello", url.pathname);
    return Response.json({ message: `${env.GREETING} from ${url.pathname}`, at: new Date().toISOString() });
  },
};
