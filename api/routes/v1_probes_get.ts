import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { recoverIfStale, STALE_EMBEDDING_MS, STALE_FITTING_MS } from "../services/background/stale";
import { findProbe } from "../services/probes";
import { ProbeSchema, probeView } from "./views/probe_views";

const route = createRoute({
  method: "get",
  path: "/v1/probes/{id}",
  tags: ["probes"],
  summary: "One probe with its metrics and chosen hyperparameters",
  description:
    "A probe over a dataset is fitted on the work queue: poll this until `status` leaves `fitting` — `ready` " +
    "(metrics, weights stored for /predict) or `failed` (`error`); `progress` counts inputs embedded. A probe " +
    `still \`fitting\` whose work has not moved for ${STALE_EMBEDDING_MS / 60_000} minutes while embedding ` +
    `(${STALE_FITTING_MS / 60_000} during the fit) lost its queue message (a restarted \`wrangler dev\`): reading it ` +
    "sends the work again, once however many readers, and it resumes from its stored cursor.",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(ProbeSchema, "The probe."), ...errorResponses },
});

export const registerV1ProbesGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, work } = c.get("services");
    const row = await findProbe(db, c.get("auth").tenantId, c.req.valid("param").id);
    await recoverIfStale(db, work, "probe_fit", row.probe, Date.now());
    return c.json(probeView(row), 200);
  });
