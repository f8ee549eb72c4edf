import { createRoute, z } from "@hono/zod-openapi";
import { conflict, errorResponses } from "../lib/errors";
import { JobSchema, jobView } from "../lib/job_views";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findJob } from "../services/jobs";

const route = createRoute({
  method: "post",
  path: "/v1/pretraining/jobs/{id}/cancel",
  tags: ["pretraining"],
  summary: "Cancel a job: a queued one at once, a running one at its trainer's next heartbeat",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: {
    200: jsonResponse(JobSchema, "The job, `cancelled` or still `running` until its trainer stops."),
    ...errorResponses,
  },
});

export const registerV1PretrainingJobsCancel = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const job = await findJob(db, c.get("auth").tenantId, c.req.valid("param").id);
    if (job.status === "succeeded" || job.status === "failed") throw conflict(`Job ${job.id} already ${job.status}.`);
    // One transaction that reads the status itself, so a claim landing between our read and this
    // write cannot make us cancel a job that already runs (it gets a cancel request instead).
    const now = Date.now();
    const where = "id = ?1 and tenant_id = ?2";
    await c.env.DB.batch([
      c.env.DB.prepare(
        `insert into job_events (job_id, kind) select id, 'cancel_requested' from training_jobs
          where ${where} and status = 'running' and cancel_requested_at is null`,
      ).bind(job.id, job.tenantId),
      c.env.DB.prepare(
        `insert into job_events (job_id, kind) select id, 'cancelled' from training_jobs where ${where} and status = 'queued'`,
      ).bind(job.id, job.tenantId),
      c.env.DB.prepare(
        `update training_jobs set cancel_requested_at = coalesce(cancel_requested_at, ?3)
          where ${where} and status in ('queued', 'running')`,
      ).bind(job.id, job.tenantId, now),
      c.env.DB.prepare(
        `update training_jobs set status = 'cancelled', finished_at = ?3 where ${where} and status = 'queued'`,
      ).bind(job.id, job.tenantId, now),
    ]);
    const fresh = await findJob(db, job.tenantId, job.id);
    return c.json(await jobView(db, fresh, true), 200);
  });
