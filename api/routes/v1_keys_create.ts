import { createRoute, z } from "@hono/zod-openapi";
import { apiKeys } from "../../db/schema";
import { newId } from "../lib/crypto";
import { errorResponses } from "../lib/errors";
import { generateApiKey } from "../lib/keys";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { ApiKeySchema, keyView, ScopeSchema } from "../lib/schemas";
import { requireScope } from "../middleware/auth";

const route = createRoute({
  method: "post",
  path: "/v1/keys",
  tags: ["keys"],
  summary: "Create an API key (its secret is shown once)",
  security: bearer,
  middleware: [requireScope("admin")] as const,
  request: {
    body: jsonBody(
      z.object({
        name: z.string().min(1).max(100).openapi({ example: "ci" }),
        scopes: z
          .array(ScopeSchema)
          .min(1)
          .openapi({ example: ["embed", "probe"] }),
      }),
    ),
  },
  responses: {
    201: jsonResponse(
      ApiKeySchema.extend({
        secret: z.string().openapi({
          example: "ss_Ab3dE9xQ_0123456789abcdefghijABCDEFGHIJ",
          description: "Shown only in this response; store it now.",
        }),
      }),
      "The new key with its secret.",
    ),
    ...errorResponses,
  },
});

export const registerV1KeysCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const { name, scopes } = c.req.valid("json");
    const auth = c.get("auth");
    const { secret, prefix, hash } = await generateApiKey();
    const [row] = await c
      .get("services")
      .db.insert(apiKeys)
      .values({ id: newId("key"), tenantId: auth.tenantId, name, prefix, hash, scopes, createdBy: auth.keyId })
      .returning();
    if (!row) throw new Error("insert returned no row");
    return c.json({ ...keyView(row), secret }, 201);
  });
