// Load test (issue 15): N concurrent clients fire mixed requests (text embeddings, GET /v1/models,
// GET /health) at a running API for D seconds, after an idle anchor measured first in the same run.
// It starts nothing itself and talks to loopback only.
//
//   npx tsx bench/load.ts --api http://127.0.0.1:8787 --key ss_... --model demo \
//       [--concurrency 200] [--duration 60] [--anchor 5] [--inputs 8]
//
// The key may come from SELFSUP_API_KEY. Prints p50/p95 per route, idle and under load, their
// ratio, and counts of 200/429/503/other; exits 1 when any answer is a 5xx other than a 503 with
// Retry-After (or a 429 lacks Retry-After, or a request fails outright).
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loopbackApi, positive } from "./args";

const { values } = parseArgs({
  options: {
    api: { type: "string" },
    key: { type: "string" },
    model: { type: "string", default: "demo" },
    concurrency: { type: "string", default: "200" },
    duration: { type: "string", default: "60" },
    anchor: { type: "string", default: "5" },
    inputs: { type: "string", default: "8" },
    timeout: { type: "string", default: "180" },
  },
});

const api = loopbackApi(values.api, "this load test");
const key = values.key ?? process.env.SELFSUP_API_KEY ?? "";
if (!key) throw new Error("--key (or SELFSUP_API_KEY) is required: an API key with the embed scope");
const concurrency = Math.floor(positive("concurrency", values.concurrency, 1000));
const durationMs = positive("duration", values.duration, 3600) * 1000;
const anchorMs = positive("anchor", values.anchor, 600) * 1000;
const maxInputs = Math.floor(positive("inputs", values.inputs, 2048));
const timeoutMs = positive("timeout", values.timeout, 3600) * 1000;

type Route = "embeddings" | "models" | "health";
type Sample = { route: Route; status: number; ms: number; retryAfter: string | null; error?: string };

const WORDS =
  "call me ishmael some years ago never mind how long precisely having little or no money in my purse".split(" ");
const sentence = (n: number) => Array.from({ length: n }, (_, i) => WORDS[(i * 7 + n) % WORDS.length]).join(" ");

function pick(): Route {
  const r = Math.random();
  return r < 0.5 ? "embeddings" : r < 0.8 ? "models" : "health";
}

async function fire(route: Route): Promise<Sample> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  let url = `${api}/health`;
  let init: RequestInit = { headers };
  if (route === "models") url = `${api}/v1/models`;
  if (route === "embeddings") {
    url = `${api}/v1/embeddings`;
    const n = 1 + Math.floor(Math.random() * maxInputs);
    const input = Array.from({ length: n }, () => sentence(4 + Math.floor(Math.random() * 40)));
    headers["content-type"] = "application/json";
    init = { method: "POST", headers, body: JSON.stringify({ model: values.model, input }) };
  }
  const started = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    const ms = performance.now() - started;
    // Keep the start of an unexpected answer's body: the report names what went wrong.
    const error = res.status >= 500 && res.status !== 503 ? body.slice(0, 300) : undefined;
    return { route, status: res.status, ms, retryAfter: res.headers.get("retry-after"), error };
  } catch (e) {
    return { route, status: 0, ms: performance.now() - started, retryAfter: null, error: String(e) };
  }
}

/** `clients` loops, each firing one request after another until `ms` have passed. */
async function run(clients: number, ms: number, routes: () => Route): Promise<Sample[]> {
  const deadline = performance.now() + ms;
  const out: Sample[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) out.push(await fire(routes()));
    }),
  );
  return out;
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};
const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : "-");

async function main() {
  const ROUTES: Route[] = ["embeddings", "models", "health"];
  // The idle anchor: one client, each route in turn, on the same machine in the same run.
  let turn = 0;
  const idle = await run(1, anchorMs, () => ROUTES[turn++ % ROUTES.length] as Route);
  console.log(`anchor: ${idle.length} requests, 1 client, ${anchorMs / 1000} s`);
  const loaded = await run(concurrency, durationMs, pick);
  console.log(`load: ${loaded.length} requests, ${concurrency} clients, ${durationMs / 1000} s\n`);

  console.log("route        n     ok   idle p50    load p50    load p95    p50 ratio  p95 / idle p95");
  for (const route of ROUTES) {
    const ok = (xs: Sample[]) => xs.filter((s) => s.route === route && s.status === 200).map((s) => s.ms);
    const [i, l] = [ok(idle), ok(loaded)];
    const n = loaded.filter((s) => s.route === route).length;
    console.log(
      `${route.padEnd(12)} ${String(n).padStart(5)} ${String(l.length).padStart(6)}  ${fmt(pct(i, 50)).padStart(10)}  ` +
        `${fmt(pct(l, 50)).padStart(10)}  ${fmt(pct(l, 95)).padStart(10)}  ${(pct(l, 50) / pct(i, 50)).toFixed(1).padStart(8)}×` +
        `  ${(pct(l, 95) / pct(i, 95)).toFixed(1).padStart(8)}×`,
    );
  }
  const count = (f: (s: Sample) => boolean) => loaded.filter(f).length;
  const c200 = count((s) => s.status === 200);
  const c429 = count((s) => s.status === 429);
  const c503 = count((s) => s.status === 503);
  const other = count((s) => ![200, 429, 503].includes(s.status));
  console.log(`\nstatus: 200=${c200} 429=${c429} 503=${c503} other=${other}`);
  // Anything but 200, or a 429/503 that says when to retry, is a failure (a wrong key or model too).
  const bad = [...idle, ...loaded].filter(
    (s) => ![200, 429, 503].includes(s.status) || (s.status !== 200 && !s.retryAfter),
  );
  if (bad.length > 0) {
    const shown = bad.slice(0, 3).map((s) => `${s.route} ${s.status}${s.error ? ` ${s.error}` : ""}`);
    console.error(`FAIL: ${bad.length} answers were neither 200 nor 429/503 with Retry-After: ${shown.join("; ")}`);
    process.exit(1);
  }
  console.log("ok: every answer was 200, or 429/503 with Retry-After");
}

await main();
