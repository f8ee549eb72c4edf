import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { evaluations } from "../../db/schema";
import { errorResponses, notFound } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { EvaluationSchema, evaluationView } from "./views/evaluation_views";

const route = createRoute({
  method: "get",
  path: "/v1/evaluations/{id}",
  tags: ["probes"],
  summary: "One evaluation and its table",
  description:
    "Poll this after POST /v1/evaluations: `status` goes `running` → `succeeded` (rows, table, baseline) or " +
    "`failed` (`error`); `progress` counts inputs embedded over every model, then models fitted.",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(EvaluationSchema, "The evaluation."), ...errorResponses },
});

export const registerV1EvaluationsGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const id = c.req.valid("param").id;
    const row = await c.get("services").db.query.evaluations.findFirst({
      where: and(eq(evaluations.id, id), eq(evaluations.tenantId, c.get("auth").tenantId)),
    });
    if (!row) throw notFound(`No evaluation \`${id}\` in this tenant; GET /v1/evaluations lists them.`);
    return c.json(evaluationView(row), 200);
  });
