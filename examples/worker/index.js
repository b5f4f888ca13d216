// The smallest Worker: enough for `wrangler deploy` against `lmsinfra sandbox`.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/health") {
      return Response.json({ ok: true });
    }
    return new Response("hello from the example Worker\n");
  },
};
