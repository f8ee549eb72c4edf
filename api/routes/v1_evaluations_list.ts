import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { evaluations } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { MAX_RECOVERED_PER_LIST, recoverStaleRows } from "../services/background/stale";
import { EvaluationSchema, evaluationView } from "./views/evaluation_views";

const route = createRoute({
  method: "get",
  path: "/v1/evaluations",
  tags: ["probes"],
  summary: "List evaluations, newest first",
  description:
    "Like GET /v1/evaluations/{id}, the list sends the work of a `running` evaluation that stopped moving " +
    `(its queue message was lost) again: at most ${MAX_RECOVERED_PER_LIST} per call, newest first.`,
  security: bearer,
  middleware: [requireScope("probe")] as const,
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(EvaluationSchema) }), "Evaluations."),
    ...errorResponses,
  },
});

export const registerV1EvaluationsList = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, work } = c.get("services");
    const rows = await db
      .select()
      .from(evaluations)
      .where(eq(evaluations.tenantId, c.get("auth").tenantId))
      .orderBy(desc(evaluations.createdAt), desc(evaluations.id));
    await recoverStaleRows(db, work, "evaluation", rows, Date.now());
    return c.json({ object: "list" as const, data: rows.map(evaluationView) }, 200);
  });
