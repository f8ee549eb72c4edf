import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { cancelJob } from "../services/job_leases";
import { JobSchema, jobView } from "./views/job_views";

const route = createRoute({
  method: "post",
  path: "/v1/finetuning/jobs/{id}/cancel",
  tags: ["finetuning"],
  summary: "Cancel a fine-tune job: a queued one at once, a running one at its trainer's next heartbeat",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: {
    200: jsonResponse(JobSchema, "The job, `cancelled` or still `running` until its trainer stops."),
    ...errorResponses,
  },
});

export const registerV1FinetuningJobsCancel = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const job = await cancelJob(db, c.get("auth").tenantId, c.req.valid("param").id, "finetune");
    return c.json(await jobView(db, job, true), 200);
  });
