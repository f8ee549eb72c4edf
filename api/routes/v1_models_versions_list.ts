import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { aliasesOf, findModel, versionsOf } from "../services/registry";
import { VersionSchema, versionView } from "./views/model_views";

const route = createRoute({
  method: "get",
  path: "/v1/models/{name}/versions",
  tags: ["models"],
  summary: "A model's versions, newest first",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: { params: z.object({ name: ModelName }) },
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(VersionSchema) }), "Versions."),
    ...errorResponses,
  },
});

export const registerV1ModelsVersionsList = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const model = await findModel(db, c.get("auth").tenantId, c.req.valid("param").name);
    const [versions, aliases] = await Promise.all([versionsOf(db, model.id), aliasesOf(db, model.id)]);
    const data = versions.map((v) =>
      versionView(
        model,
        v,
        aliases.filter((a) => a.version === v.version).map((a) => a.alias),
      ),
    );
    return c.json({ object: "list" as const, data }, 200);
  });
