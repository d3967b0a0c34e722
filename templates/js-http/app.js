// {{name}}: a wasi:http component in JavaScript. Requests arrive as `fetch` events
// (the web's Request and Response), as in a service worker.
addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  event.respondWith(
    new Response(`Hello from {{name}}! ${event.request.method} ${url.pathname}${url.search}\n`, {
      headers: { "content-type": "text/plain; charset=utf-8" },
    }),
  );
});
