import { createRoute, z } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import { errorResponses } from "../lib/errors";
import { metrics, renderMetrics } from "../lib/metrics";
import { bearer, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import type { AppEnv } from "../types";

/** Counts every request by the route pattern that served it (not the raw path, which would explode). */
const measure = createMiddleware<AppEnv>(async (c, next) => {
  const started = performance.now();
  try {
    await next();
  } finally {
    const route = matchedRoutes(c).findLast((r) => r.method !== "ALL")?.path ?? "(unmatched)";
    const labels = { method: c.req.method, route, status: String(c.res.status) };
    metrics.requests.inc(labels);
    if (c.res.status >= 400) metrics.errors.inc(labels);
    metrics.latency.observe((performance.now() - started) / 1000, { route });
  }
});

const route = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["operations"],
  summary: "Prometheus metrics of the isolate that serves the scrape",
  description:
    "Prometheus text format. Metrics are per isolate (Workers run many; the `isolate` label tells them apart): " +
    "requests and errors by route and status, latency histograms, tokens embedded, micro-batch sizes, session-cache " +
    "hits/misses/evictions, model load time and ORT's WASM memory. Needs an `admin` key.",
  security: bearer,
  middleware: [requireScope("admin")] as const,
  responses: {
    200: {
      description: "Prometheus text exposition format 0.0.4.",
      content: { "text/plain": { schema: z.string().openapi({ example: "selfsup_wasm_memory_bytes 18874368" }) } },
    },
    ...errorResponses,
  },
});

export const registerMetrics = (app: Router) => {
  app.use("*", measure);
  return app.openapi(route, (c) =>
    c.text(renderMetrics(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
  );
};
