import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { aliasesOf, resolveVersion } from "../services/registry";
import { VersionSchema, versionView } from "./views/model_views";

const route = createRoute({
  method: "get",
  path: "/v1/models/{name}/versions/{version}",
  tags: ["models"],
  summary: "One version, by number (`3`) or alias (`production`)",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: {
    params: z.object({
      name: ModelName,
      version: z
        .string()
        .regex(/^([0-9]+|[a-z][a-z0-9_-]{0,31})$/, "a version number or an alias")
        .openapi({ example: "latest" }),
    }),
  },
  responses: {
    200: jsonResponse(VersionSchema, "The version with its manifest and files."),
    ...errorResponses,
  },
});

export const registerV1ModelsVersionsGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const { name, version } = c.req.valid("param");
    const { model, version: v } = await resolveVersion(db, c.get("auth").tenantId, `${name}@${version}`);
    const aliases = (await aliasesOf(db, model.id)).filter((a) => a.version === v.version).map((a) => a.alias);
    return c.json(versionView(model, v, aliases), 200);
  });
