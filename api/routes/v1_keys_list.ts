import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { apiKeys } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ApiKeySchema, keyView } from "../lib/schemas";
import { requireScope } from "../middleware/auth";

const route = createRoute({
  method: "get",
  path: "/v1/keys",
  tags: ["keys"],
  summary: "List this tenant's API keys (never their secrets)",
  security: bearer,
  middleware: [requireScope("admin")] as const,
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(ApiKeySchema) }), "Keys, newest first."),
    ...errorResponses,
  },
});

export const registerV1KeysList = (app: Router) =>
  app.openapi(route, async (c) => {
    const rows = await c
      .get("services")
      .db.select()
      .from(apiKeys)
      .where(eq(apiKeys.tenantId, c.get("auth").tenantId))
      .orderBy(desc(apiKeys.createdAt));
    return c.json({ object: "list" as const, data: rows.map(keyView) }, 200);
  });
