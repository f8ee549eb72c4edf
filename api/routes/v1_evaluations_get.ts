import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { evaluations } from "../../db/schema";
import { errorResponses, notFound } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { recoverIfStale, STALE_EMBEDDING_MS, STALE_FITTING_MS } from "../services/background/stale";
import { EvaluationSchema, evaluationView } from "./views/evaluation_views";

const route = createRoute({
  method: "get",
  path: "/v1/evaluations/{id}",
  tags: ["probes"],
  summary: "One evaluation and its table",
  description:
    "Poll this after POST /v1/evaluations: `status` goes `running` → `succeeded` (rows, table, baseline) or " +
    "`failed` (`error`); `progress` counts inputs embedded over every model, then models fitted. An evaluation " +
    `still \`running\` whose work has not moved for ${STALE_EMBEDDING_MS / 60_000} minutes while embedding ` +
    `(${STALE_FITTING_MS / 60_000} while fitting) lost its queue message (a restarted \`wrangler dev\`): reading it ` +
    "sends the work again, once however many readers, and it resumes from its stored cursor.",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(EvaluationSchema, "The evaluation."), ...errorResponses },
});

export const registerV1EvaluationsGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const id = c.req.valid("param").id;
    const { db, work } = c.get("services");
    const row = await db.query.evaluations.findFirst({
      where: and(eq(evaluations.id, id), eq(evaluations.tenantId, c.get("auth").tenantId)),
    });
    if (!row) throw notFound(`No evaluation \`${id}\` in this tenant; GET /v1/evaluations lists them.`);
    await recoverIfStale(db, work, "evaluation", row, Date.now());
    return c.json(evaluationView(row), 200);
  });
