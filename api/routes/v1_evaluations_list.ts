import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { evaluations } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { EvaluationSchema, evaluationView } from "./views/evaluation_views";

const route = createRoute({
  method: "get",
  path: "/v1/evaluations",
  tags: ["probes"],
  summary: "List evaluations, newest first",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(EvaluationSchema) }), "Evaluations."),
    ...errorResponses,
  },
});

export const registerV1EvaluationsList = (app: Router) =>
  app.openapi(route, async (c) => {
    const rows = await c
      .get("services")
      .db.select()
      .from(evaluations)
      .where(eq(evaluations.tenantId, c.get("auth").tenantId))
      .orderBy(desc(evaluations.createdAt), desc(evaluations.id));
    return c.json({ object: "list" as const, data: rows.map(evaluationView) }, 200);
  });
