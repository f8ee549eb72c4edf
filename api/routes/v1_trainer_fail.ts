import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { failJob } from "../services/job_leases";
import { JobSchema, jobView } from "./views/job_views";

const route = createRoute({
  method: "post",
  path: "/v1/trainer/jobs/{id}/fail",
  tags: ["trainer"],
  summary: "Give a job up: retryable failures requeue it while attempts remain",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(
      z.object({
        lease_token: z.string(),
        error: z.string().min(1).max(4000).openapi({ example: "loss is NaN at step 412" }),
        retryable: z.boolean().default(false),
        release: z.boolean().default(false).openapi({
          description: "A graceful stop (SIGTERM): requeue without counting the attempt.",
        }),
      }),
    ),
  },
  responses: { 200: jsonResponse(JobSchema, "The job, `queued` again or `failed`."), ...errorResponses },
});

export const registerV1TrainerFail = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const job = await failJob(db, c.get("auth").tenantId, c.req.valid("param").id, c.req.valid("json"));
    return c.json(await jobView(db, job, true), 200);
  });
