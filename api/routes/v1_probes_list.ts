import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { listProbes } from "../services/probes";
import { resolveVersion } from "../services/registry";
import { ProbeSchema, probeView } from "./views/probe_views";

const route = createRoute({
  method: "get",
  path: "/v1/probes",
  tags: ["probes"],
  summary: "List probes, newest first; `model` narrows to one version",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: {
    query: z.object({
      model: z.string().optional().openapi({
        example: "demo@3",
        description: "`name`, `name@3` or `name@alias`: probes of the version it resolves to now.",
      }),
    }),
  },
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(ProbeSchema) }), "Probes."),
    ...errorResponses,
  },
});

export const registerV1ProbesList = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const tenantId = c.get("auth").tenantId;
    const { model } = c.req.valid("query");
    const versionId = model ? (await resolveVersion(db, tenantId, model)).version.id : undefined;
    const rows = await listProbes(db, tenantId, versionId);
    return c.json({ object: "list" as const, data: rows.map(probeView) }, 200);
  });
