import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { AliasName, ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { aliasesOf, forgetAliases, moveAliasStatements, resolveVersion } from "../services/registry";
import { VersionSchema, versionView } from "./views/model_views";

const route = createRoute({
  method: "put",
  path: "/v1/models/{name}/aliases/{alias}",
  tags: ["models"],
  summary: "Point an alias at a version (recorded in the alias history)",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    params: z.object({ name: ModelName, alias: AliasName }),
    body: jsonBody(
      z.object({
        version: z.number().int().min(1).openapi({ example: 3 }),
        reason: z.string().max(500).optional().openapi({ example: "probe accuracy +4 pts" }),
      }),
    ),
  },
  responses: {
    200: jsonResponse(VersionSchema, "The version the alias now points at."),
    ...errorResponses,
  },
});

export const registerV1ModelsAliasesPut = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const auth = c.get("auth");
    const { name, alias } = c.req.valid("param");
    const body = c.req.valid("json");
    const { model, version } = await resolveVersion(db, auth.tenantId, `${name}@${body.version}`);
    const current = (await aliasesOf(db, model.id)).find((a) => a.alias === alias);
    // Re-pointing an alias at the version it already has is a no-op, not a history entry.
    if (current?.version !== version.version) {
      await db.batch(
        moveAliasStatements(db, {
          tenantId: auth.tenantId,
          modelId: model.id,
          alias,
          versionId: version.id,
          actorKeyId: auth.keyId,
          reason: body.reason,
        }),
      );
      // Again after the write: a lookup in this isolate that raced the batch may have cached the old target.
      forgetAliases(auth.tenantId);
    }
    const aliases = (await aliasesOf(db, model.id)).filter((a) => a.version === version.version).map((a) => a.alias);
    return c.json(versionView(model, version, aliases), 200);
  });
