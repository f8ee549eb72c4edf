import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq } from "drizzle-orm";
import { aliasEvents, modelVersions } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { AliasName, iso, ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { findModel } from "../services/registry";
import { AliasEventSchema } from "./views/model_views";

const route = createRoute({
  method: "get",
  path: "/v1/models/{name}/aliases/{alias}/history",
  tags: ["models"],
  summary: "Who moved an alias from which version to which, newest first",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: { params: z.object({ name: ModelName, alias: AliasName }) },
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(AliasEventSchema) }), "Alias moves."),
    ...errorResponses,
  },
});

export const registerV1ModelsAliasesHistory = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const { name, alias } = c.req.valid("param");
    const model = await findModel(db, c.get("auth").tenantId, name);
    const [events, versions] = await Promise.all([
      db
        .select()
        .from(aliasEvents)
        .where(and(eq(aliasEvents.modelId, model.id), eq(aliasEvents.alias, alias)))
        .orderBy(desc(aliasEvents.createdAt), desc(aliasEvents.id)),
      db
        .select({ id: modelVersions.id, version: modelVersions.version })
        .from(modelVersions)
        .where(eq(modelVersions.modelId, model.id)),
    ]);
    const num = new Map(versions.map((v) => [v.id, v.version]));
    const data = events.map((e) => ({
      alias: e.alias,
      from: e.fromVersionId ? (num.get(e.fromVersionId) ?? null) : null,
      to: num.get(e.toVersionId) ?? 0,
      actorKeyId: e.actorKeyId,
      reason: e.reason,
      createdAt: iso(e.createdAt) as string,
    }));
    return c.json({ object: "list" as const, data }, 200);
  });
