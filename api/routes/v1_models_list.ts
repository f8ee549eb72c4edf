import { createRoute, z } from "@hono/zod-openapi";
import { asc, count, eq } from "drizzle-orm";
import { modelAliases, models, modelVersions } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { ModelSchema, modelView } from "./views/model_views";

const route = createRoute({
  method: "get",
  path: "/v1/models",
  tags: ["models"],
  summary: "List models (OpenAI list shape plus versions and aliases)",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(ModelSchema) }), "Models by name."),
    ...errorResponses,
  },
});

export const registerV1ModelsList = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const tenantId = c.get("auth").tenantId;
    const [rows, counts, aliases] = await db.batch([
      db.select().from(models).where(eq(models.tenantId, tenantId)).orderBy(asc(models.name)),
      db
        .select({ modelId: modelVersions.modelId, n: count() })
        .from(modelVersions)
        .where(eq(modelVersions.tenantId, tenantId))
        .groupBy(modelVersions.modelId),
      db
        .select({ modelId: modelAliases.modelId, alias: modelAliases.alias, version: modelVersions.version })
        .from(modelAliases)
        .innerJoin(modelVersions, eq(modelVersions.id, modelAliases.versionId))
        .where(eq(modelVersions.tenantId, tenantId)),
    ]);
    const n = new Map(counts.map((r) => [r.modelId, r.n]));
    const data = rows.map((m) =>
      modelView(
        m,
        n.get(m.id) ?? 0,
        aliases.filter((a) => a.modelId === m.id),
      ),
    );
    return c.json({ object: "list" as const, data }, 200);
  });
