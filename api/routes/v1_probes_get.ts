import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findProbe } from "../services/probes";
import { ProbeSchema, probeView } from "./views/probe_views";

const route = createRoute({
  method: "get",
  path: "/v1/probes/{id}",
  tags: ["probes"],
  summary: "One probe with its metrics and chosen hyperparameters",
  description:
    "A probe over a dataset is fitted on the work queue: poll this until `status` leaves `fitting` — `ready` " +
    "(metrics, weights stored for /predict) or `failed` (`error`); `progress` counts inputs embedded.",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(ProbeSchema, "The probe."), ...errorResponses },
});

export const registerV1ProbesGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const row = await findProbe(c.get("services").db, c.get("auth").tenantId, c.req.valid("param").id);
    return c.json(probeView(row), 200);
  });
