/** The fresh isolate lives until its response body has been read or abandoned. */
export function disposeAfterBody(res: Response, dispose: () => void): Response {
  if (!res.body) {
    dispose();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          dispose();
        } else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
        dispose();
      }
    },
    cancel(reason) {
      dispose();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
