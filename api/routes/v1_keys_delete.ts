import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { apiKeys } from "../../db/schema";
import { errorResponses, notFound } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ApiKeySchema, keyView } from "../lib/schemas";
import { requireScope } from "../middleware/auth";

const route = createRoute({
  method: "delete",
  path: "/v1/keys/{id}",
  tags: ["keys"],
  summary: "Revoke an API key (it stops working at once)",
  security: bearer,
  middleware: [requireScope("admin")] as const,
  request: { params: z.object({ id: z.string().openapi({ example: "key_mi1x2y3zAbCdEfGhIjKl" }) }) },
  responses: {
    200: jsonResponse(ApiKeySchema, "The revoked key."),
    ...errorResponses,
  },
});

export const registerV1KeysDelete = (app: Router) =>
  app.openapi(route, async (c) => {
    const { id } = c.req.valid("param");
    const { db } = c.get("services");
    const where = and(eq(apiKeys.id, id), eq(apiKeys.tenantId, c.get("auth").tenantId));
    const existing = await db.query.apiKeys.findFirst({ where });
    if (!existing) throw notFound(`No API key \`${id}\` in this tenant.`);
    const [row] = await db
      .update(apiKeys)
      .set({ revokedAt: existing.revokedAt ?? Date.now() })
      .where(where)
      .returning();
    return c.json(keyView(row ?? existing), 200);
  });
