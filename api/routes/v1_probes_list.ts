import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { MAX_RECOVERED_PER_LIST, recoverStaleRows } from "../services/background/stale";
import { listProbes } from "../services/probes";
import { resolveVersion } from "../services/registry";
import { ProbeSchema, probeView } from "./views/probe_views";

const route = createRoute({
  method: "get",
  path: "/v1/probes",
  tags: ["probes"],
  summary: "List probes, newest first; `model` narrows to one version",
  description:
    "Like GET /v1/probes/{id}, the list sends the work of a `fitting` probe that stopped moving (its queue " +
    `message was lost) again: at most ${MAX_RECOVERED_PER_LIST} per call, newest first.`,
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
    const { db, work } = c.get("services");
    const tenantId = c.get("auth").tenantId;
    const { model } = c.req.valid("query");
    const versionId = model ? (await resolveVersion(db, tenantId, model)).version.id : undefined;
    const rows = await listProbes(db, tenantId, versionId);
    await recoverStaleRows(
      db,
      work,
      "probe_fit",
      rows.map((r) => r.probe),
      Date.now(),
    );
    return c.json({ object: "list" as const, data: rows.map(probeView) }, 200);
  });
