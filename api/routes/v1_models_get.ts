import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { aliasesOf, findModel, versionsOf } from "../services/registry";
import { ModelSchema, modelView, VersionSchema, versionView } from "./views/model_views";

const route = createRoute({
  method: "get",
  path: "/v1/models/{name}",
  tags: ["models"],
  summary: "One model with its versions and aliases",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: { params: z.object({ name: ModelName }) },
  responses: {
    200: jsonResponse(
      ModelSchema.extend({ data: z.array(VersionSchema) }),
      "The model; `data` lists versions, newest first.",
    ),
    ...errorResponses,
  },
});

export const registerV1ModelsGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const model = await findModel(db, c.get("auth").tenantId, c.req.valid("param").name);
    const [versions, aliases] = await Promise.all([versionsOf(db, model.id), aliasesOf(db, model.id)]);
    const aliasNames = (v: number) => aliases.filter((a) => a.version === v).map((a) => a.alias);
    return c.json(
      {
        ...modelView(model, versions.length, aliases),
        data: versions.map((v) => versionView(model, v, aliasNames(v.version))),
      },
      200,
    );
  });
