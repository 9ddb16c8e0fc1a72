// An example named worker, served at /w/hello/ by every host.
export default {
  async fetch(request) {
    return new Response(`hello from mayfly: ${new URL(request.url).pathname}\n`);
  },
};
