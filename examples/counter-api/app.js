// counter-api: a JSON API in JavaScript on edgefn's host interfaces — a hit counter per
// name kept in the function's key-value store, and a call to an allowed outbound host.
//   GET /counter-api/hits/NAME  → {"name": NAME, "hits": N}, N counting up
//   GET /counter-api/upstream   → the UPSTREAM setting's URL, fetched: {"url", "status", "body"}
// Made from the js-http template: `edgefn new counter-api --template js-http`, then this
// file, wit/world.wit and edgefn.toml copied over it.
import { get, put } from "edgefn:host/kv@0.1.0";
import { get as setting } from "edgefn:host/config@0.1.0";

function json(status, value) {
  return new Response(JSON.stringify(value) + "\n", { status, headers: { "content-type": "application/json" } });
}

async function handle(request) {
  if (request.method !== "GET") {
    return json(405, { error: "GET only" });
  }
  const [, what, name] = new URL(request.url).pathname.split("/").filter(Boolean);
  if (what === "hits" && name) {
    const key = `hits:${name}`;
    const stored = get(key);
    const hits = (stored ? Number(new TextDecoder().decode(stored)) : 0) + 1;
    put(key, new TextEncoder().encode(String(hits)), undefined);
    return json(200, { name, hits });
  }
  if (what === "upstream") {
    const url = setting("UPSTREAM");
    if (!url) {
      return json(500, { error: "the UPSTREAM setting is not set" });
    }
    try {
      const res = await fetch(url);
      const body = await res.text();
      return json(200, { url, status: res.status, body: body.slice(0, 200) });
    } catch (e) {
      return json(502, { url, error: String(e) });
    }
  }
  return json(404, { error: "try /counter-api/hits/NAME or /counter-api/upstream" });
}

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));
