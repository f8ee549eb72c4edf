import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, sql } from "drizzle-orm";
import { jobEvents, trainingJobs } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { JobSchema, jobView } from "../lib/job_views";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findJob, findLeasedJob } from "../services/jobs";

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
    const body = c.req.valid("json");
    const tenantId = c.get("auth").tenantId;
    const job = await findLeasedJob(db, tenantId, c.req.valid("param").id, body.lease_token);
    const retry = body.release || (body.retryable && job.attempts < job.maxAttempts);
    const leased = and(eq(trainingJobs.id, job.id), eq(trainingJobs.leaseToken, body.lease_token));
    await db.batch([
      db
        .update(trainingJobs)
        .set({
          status: retry ? "queued" : "failed",
          error: body.error,
          leaseToken: null,
          leaseOwner: null,
          leaseExpiresAt: null,
          finishedAt: retry ? null : Date.now(),
          ...(body.release ? { attempts: sql`max(${trainingJobs.attempts} - 1, 0)` } : {}),
        })
        .where(leased),
      db.insert(jobEvents).values({
        jobId: job.id,
        kind: body.release ? "released" : retry ? "retry" : "failed",
        data: { error: body.error },
      }),
    ]);
    return c.json(await jobView(db, await findJob(db, tenantId, job.id), true), 200);
  });
