import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { jobEvents, trainingJobs } from "../../db/schema";
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
    const now = Date.now();
    if (job.status === "queued") {
      await db.batch([
        db
          .update(trainingJobs)
          .set({ status: "cancelled", cancelRequestedAt: now, finishedAt: now })
          .where(and(eq(trainingJobs.id, job.id), eq(trainingJobs.status, "queued"))),
        db.insert(jobEvents).values({ jobId: job.id, kind: "cancelled" }),
      ]);
    } else if (job.status === "running" && job.cancelRequestedAt === null) {
      await db.batch([
        db.update(trainingJobs).set({ cancelRequestedAt: now }).where(eq(trainingJobs.id, job.id)),
        db.insert(jobEvents).values({ jobId: job.id, kind: "cancel_requested" }),
      ]);
    }
    const fresh = await findJob(db, job.tenantId, job.id);
    return c.json(await jobView(db, fresh, true), 200);
  });
