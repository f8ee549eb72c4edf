import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { jobEvents, trainingJobs } from "../../db/schema";
import { badRequest, conflict, errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { checkpointKey, findLeasedJob, leaseSeconds } from "../services/jobs";

const Numbers = z.record(z.string(), z.number().refine(Number.isFinite, "must be finite"));

const route = createRoute({
  method: "post",
  path: "/v1/trainer/jobs/{id}/heartbeat",
  tags: ["trainer"],
  summary: "Report progress and extend the lease; the answer says whether to stop",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(
      z
        .object({
          lease_token: z.string(),
          step: z.number().int().min(0),
          total_steps: z.number().int().min(1),
          eta_seconds: z.number().min(0).optional(),
          metrics: Numbers.optional().openapi({ example: { loss: 5.2, lr: 0.0004, tokens_per_second: 5100 } }),
          eval: Numbers.optional().openapi({ example: { knn_accuracy: 0.62, linear_accuracy: 0.66 } }),
          checkpoint_step: z
            .number()
            .int()
            .min(0)
            .optional()
            .openapi({ description: "Set after uploading a checkpoint; the API checks it exists." }),
          checkpoint_sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/, "the checkpoint's SHA-256 as 64 lowercase hex characters")
            .optional(),
          checkpoint_bytes: z.number().int().min(1).optional(),
        })
        .refine((b) => b.checkpoint_step === undefined || (b.checkpoint_sha256 && b.checkpoint_bytes), {
          path: ["checkpoint_sha256"],
          message: "required with checkpoint_step (with checkpoint_bytes): the next trainer verifies its download",
        }),
    ),
  },
  responses: {
    200: jsonResponse(
      z.object({ cancel: z.boolean(), leaseExpiresAt: z.string().nullable() }),
      "`cancel: true` means stop now; the job is already marked cancelled.",
    ),
    ...errorResponses,
  },
});

export const registerV1TrainerHeartbeat = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const body = c.req.valid("json");
    const job = await findLeasedJob(db, c.get("auth").tenantId, c.req.valid("param").id, body.lease_token);
    const leased = and(
      eq(trainingJobs.id, job.id),
      eq(trainingJobs.leaseToken, body.lease_token),
      eq(trainingJobs.status, "running"),
    );
    const now = Date.now();

    if (job.cancelRequestedAt !== null) {
      await db.batch([
        db
          .update(trainingJobs)
          .set({ status: "cancelled", finishedAt: now, leaseToken: null, leaseExpiresAt: null })
          .where(leased),
        db.insert(jobEvents).values({ jobId: job.id, kind: "cancelled", step: body.step }),
      ]);
      return c.json({ cancel: true, leaseExpiresAt: null }, 200);
    }
    if (body.checkpoint_step !== undefined) {
      const head = await c.env.ARTIFACTS.head(checkpointKey(job, body.checkpoint_step));
      if (!head) {
        throw badRequest("checkpoint_step: no checkpoint was uploaded; PUT it to the URL from /uploads first.", [
          { path: "checkpoint_step", message: "checkpoint object not found" },
        ]);
      }
      if (head.size !== body.checkpoint_bytes) {
        throw badRequest(
          `checkpoint_bytes: the stored checkpoint is ${head.size} bytes, not ${body.checkpoint_bytes}.`,
          [{ path: "checkpoint_bytes", message: `stored object is ${head.size} bytes` }],
        );
      }
    }
    const expires = now + leaseSeconds(c.env) * 1000;
    const [updated] = await db.batch([
      db
        .update(trainingJobs)
        .set({
          leaseExpiresAt: expires,
          progress: { step: body.step, total: body.total_steps, etaSeconds: body.eta_seconds },
          ...(body.metrics ? { metrics: { ...(job.metrics ?? {}), ...body.metrics, ...(body.eval ?? {}) } } : {}),
          ...(body.checkpoint_step !== undefined
            ? {
                checkpointKey: checkpointKey(job, body.checkpoint_step),
                checkpointStep: body.checkpoint_step,
                checkpointSha256: body.checkpoint_sha256,
                checkpointBytes: body.checkpoint_bytes,
              }
            : {}),
        })
        .where(leased)
        .returning({ id: trainingJobs.id }),
      ...(body.metrics
        ? [db.insert(jobEvents).values({ jobId: job.id, kind: "metrics", step: body.step, data: body.metrics })]
        : []),
      ...(body.eval
        ? [db.insert(jobEvents).values({ jobId: job.id, kind: "eval", step: body.step, data: body.eval })]
        : []),
      ...(body.checkpoint_step !== undefined
        ? [db.insert(jobEvents).values({ jobId: job.id, kind: "checkpoint", step: body.checkpoint_step })]
        : []),
    ] as const);
    if (updated.length === 0) throw conflict(`The lease on job ${job.id} changed while reporting; stop working on it.`);
    // The previous checkpoint is superseded; keep storage to one per job (best effort).
    if (
      body.checkpoint_step !== undefined &&
      job.checkpointKey &&
      job.checkpointKey !== checkpointKey(job, body.checkpoint_step)
    ) {
      c.executionCtx.waitUntil(c.env.ARTIFACTS.delete(job.checkpointKey).catch(() => {}));
    }
    return c.json({ cancel: false, leaseExpiresAt: new Date(expires).toISOString() }, 200);
  });
