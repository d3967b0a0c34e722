// {{name}}: a wasi:http component in TypeScript. Requests arrive as `fetch` events
// (the web's Request and Response), as in a service worker.
interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

function greet(request: Request): Response {
  const url = new URL(request.url);
  const text: string = `Hello from {{name}}! ${request.method} ${url.pathname}${url.search}\n`;
  return new Response(text, { headers: { "content-type": "text/plain; charset=utf-8" } });
}

addEventListener("fetch", (event) => {
  const fetchEvent = event as FetchEvent;
  fetchEvent.respondWith(greet(fetchEvent.request));
});
