import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { errorResponses } from "../lib/errors";
import { jsonResponse, type Router } from "../lib/openapi";

const route = createRoute({
  method: "get",
  path: "/health",
  tags: ["meta"],
  summary: "Liveness and database reachability",
  responses: {
    200: jsonResponse(
      z.object({ status: z.literal("ok"), database: z.literal("ok"), time: z.string() }).openapi({
        example: { status: "ok", database: "ok", time: "2026-11-27T21:00:00.000Z" },
      }),
      "The API and its database answer.",
    ),
    500: errorResponses[500],
  },
});

export const registerHealth = (app: Router) =>
  app.openapi(route, async (c) => {
    await c.get("services").db.run(sql`select 1`);
    return c.json({ status: "ok" as const, database: "ok" as const, time: new Date().toISOString() }, 200);
  });
