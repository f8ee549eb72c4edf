import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { jobEvents, trainingJobs } from "../../db/schema";
import { randomToken } from "../lib/crypto";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { checkpointKey, leaseSeconds } from "../services/jobs";

const Signed = z.object({ method: z.enum(["GET", "PUT"]), url: z.string(), expiresAt: z.string() });

export const ClaimSchema = z
  .object({
    job: z.object({
      id: z.string(),
      model: z.string(),
      modality: z.string(),
      objective: z.string(),
      preset: z.string(),
      config: z.record(z.string(), z.unknown()),
      attempt: z.number().int(),
      evalDataset: z.string().nullable(),
    }),
    lease: z.object({ owner: z.string(), token: z.string(), expiresAt: z.string(), seconds: z.number().int() }),
    corpus: Signed.extend({ sha256: z.string(), bytes: z.number().int(), format: z.string() }),
    evalSet: Signed.extend({ sha256: z.string(), format: z.string() }).nullable(),
    checkpoint: Signed.extend({ step: z.number().int() }).nullable(),
  })
  .openapi("Claim");

const route = createRoute({
  method: "post",
  path: "/v1/trainer/claim",
  tags: ["trainer"],
  summary: "Claim the oldest queued job (or one whose lease expired) with a lease",
  description:
    "One atomic UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING: concurrent claims never get the same job. " +
    "204 when nothing is waiting. The answer carries presigned URLs for the corpus and the last checkpoint.",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    body: jsonBody(z.object({ owner: z.string().min(1).max(200).openapi({ example: "trainer-gpu0-7f3a" }) })),
  },
  responses: {
    200: jsonResponse(ClaimSchema, "A job and its lease."),
    204: { description: "Nothing to do; poll again later." },
    ...errorResponses,
  },
});

export const registerV1TrainerClaim = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, presign } = c.get("services");
    const tenantId = c.get("auth").tenantId;
    const { owner } = c.req.valid("json");
    const now = Date.now();
    const token = randomToken(32);
    const lease = leaseSeconds(c.env);
    const expires = now + lease * 1000;
    const [, claimed] = await c.env.DB.batch<{ id: string }>([
      // Jobs whose lease ran out on their last allowed attempt fail instead of being claimed again.
      c.env.DB.prepare(
        `update training_jobs set status = 'failed', finished_at = ?1, lease_token = null,
           error = 'lease expired on the last allowed attempt (' || attempts || '/' || max_attempts || ')'
         where tenant_id = ?2 and status = 'running' and lease_expires_at < ?1 and attempts >= max_attempts`,
      ).bind(now, tenantId),
      c.env.DB.prepare(
        `update training_jobs
           set status = 'running', lease_owner = ?1, lease_token = ?2, lease_expires_at = ?3,
               attempts = attempts + 1, started_at = coalesce(started_at, ?4)
         where id = (
           select id from training_jobs
            where tenant_id = ?5 and cancel_requested_at is null and attempts < max_attempts
              and (status = 'queued' or (status = 'running' and lease_expires_at < ?4))
            order by created_at, id limit 1)
         returning id`,
      ).bind(owner, token, expires, now, tenantId),
    ]);
    const id = claimed?.results[0]?.id;
    if (!id) return c.body(null, 204);

    const job = await db.query.trainingJobs.findFirst({ where: eq(trainingJobs.id, id), with: undefined });
    if (!job) throw new Error(`claimed job ${id} vanished`);
    const [dataset, evalSet] = await Promise.all([
      db.query.datasets.findFirst({ where: (d, { eq }) => eq(d.id, job.datasetId) }),
      job.evalDatasetId
        ? db.query.datasets.findFirst({ where: (d, { eq }) => eq(d.id, job.evalDatasetId as string) })
        : null,
    ]);
    if (!dataset) throw new Error(`dataset ${job.datasetId} of job ${id} vanished`);
    const resumed = job.checkpointKey !== null && job.checkpointStep !== null;
    await db.insert(jobEvents).values({
      jobId: id,
      kind: resumed ? "resumed" : "claimed",
      step: job.checkpointStep,
      data: { owner, attempt: job.attempts },
    });
    return c.json(
      {
        job: {
          id,
          model: job.modelName,
          modality: job.modality,
          objective: job.objective,
          preset: job.preset,
          config: job.config,
          attempt: job.attempts,
          evalDataset: job.evalDatasetId,
        },
        lease: { owner, token, expiresAt: new Date(expires).toISOString(), seconds: lease },
        corpus: {
          ...(await presign("GET", dataset.objectKey)),
          sha256: dataset.sha256,
          bytes: dataset.bytes,
          format: dataset.format,
        },
        evalSet: evalSet
          ? { ...(await presign("GET", evalSet.objectKey)), sha256: evalSet.sha256, format: evalSet.format }
          : null,
        checkpoint: resumed
          ? { ...(await presign("GET", checkpointKey(job))), step: job.checkpointStep as number }
          : null,
      },
      200,
    );
  });
