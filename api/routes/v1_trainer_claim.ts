import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, gte } from "drizzle-orm";
import { trainingJobs } from "../../db/schema";
import { randomToken } from "../lib/crypto";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { leaseSeconds } from "../services/jobs";

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
    checkpoint: Signed.extend({ step: z.number().int(), sha256: z.string(), bytes: z.number().int() }).nullable(),
    init: z
      .object({
        ref: z.string().openapi({ example: "minilm@1" }),
        manifest: z.record(z.string(), z.unknown()),
        files: z.record(z.string(), Signed.extend({ sha256: z.string(), bytes: z.number().int() })).openapi({
          description: "Presigned GETs for the version's `weights` file and its tokenizer.json (text).",
        }),
      })
      .nullable()
      .openapi({
        description:
          "Set when the job continues a registered version (`init_from`): start from these weights, this tokenizer and the manifest's `architecture`; the job's preset does not apply.",
      }),
  })
  .openapi("Claim");

const route = createRoute({
  method: "post",
  path: "/v1/trainer/claim",
  tags: ["trainer"],
  summary: "Claim the oldest queued job (or one whose lease expired) with a lease",
  description:
    "One atomic UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING: concurrent claims never get the same job. " +
    "204 when nothing is waiting. The answer carries presigned URLs for the corpus and the last checkpoint, and " +
    "for a job with `init_from` (`init`) the version's manifest and presigned GETs for its weights and tokenizer.",
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
    const lease = leaseSeconds(c.env);
    const expires = now + lease * 1000;

    // Idempotent per owner: a trainer that retries a claim whose answer it lost gets the same job back.
    const held = await db.query.trainingJobs.findFirst({
      where: and(
        eq(trainingJobs.tenantId, tenantId),
        eq(trainingJobs.status, "running"),
        eq(trainingJobs.leaseOwner, owner),
        gte(trainingJobs.leaseExpiresAt, now),
      ),
    });
    let token = held?.leaseToken ?? null;
    if (held && token) {
      await db.update(trainingJobs).set({ leaseExpiresAt: expires }).where(eq(trainingJobs.id, held.id));
    } else {
      token = randomToken(32);
      const stale = "status = 'running' and lease_expires_at < ?1";
      await c.env.DB.batch([
        // A cancel that no heartbeat delivered (the trainer died) still ends the job.
        c.env.DB.prepare(
          `insert into job_events (job_id, kind) select id, 'cancelled' from training_jobs
            where tenant_id = ?2 and cancel_requested_at is not null and (status = 'queued' or (${stale}))`,
        ).bind(now, tenantId),
        c.env.DB.prepare(
          `update training_jobs set status = 'cancelled', finished_at = ?1, lease_token = null
            where tenant_id = ?2 and cancel_requested_at is not null and (status = 'queued' or (${stale}))`,
        ).bind(now, tenantId),
        // Jobs whose lease ran out on their last allowed attempt fail instead of being claimed again.
        c.env.DB.prepare(
          `insert into job_events (job_id, kind, data) select id, 'failed', json_object('error', 'lease expired')
             from training_jobs where tenant_id = ?2 and ${stale} and attempts >= max_attempts`,
        ).bind(now, tenantId),
        c.env.DB.prepare(
          `update training_jobs set status = 'failed', finished_at = ?1, lease_token = null,
             error = 'lease expired on the last allowed attempt (' || attempts || '/' || max_attempts || ')'
           where tenant_id = ?2 and ${stale} and attempts >= max_attempts`,
        ).bind(now, tenantId),
        c.env.DB.prepare(
          `update training_jobs
             set status = 'running', lease_owner = ?1, lease_token = ?2, lease_expires_at = ?3,
                 attempts = attempts + 1, started_at = coalesce(started_at, ?4)
           where id = (
             select id from training_jobs
              where tenant_id = ?5 and cancel_requested_at is null and attempts < max_attempts
                and (status = 'queued' or (status = 'running' and lease_expires_at < ?4))
              order by created_at, id limit 1)`,
        ).bind(owner, token, expires, now, tenantId),
        c.env.DB.prepare(
          `insert into job_events (job_id, kind, step, data)
           select id, case when checkpoint_key is null then 'claimed' else 'resumed' end, checkpoint_step,
                  json_object('owner', ?2, 'attempt', attempts)
             from training_jobs where lease_token = ?1`,
        ).bind(token, owner),
      ]);
    }
    const job = await db.query.trainingJobs.findFirst({ where: eq(trainingJobs.leaseToken, token) });
    if (!job) return c.body(null, 204);
    const [dataset, evalSet] = await Promise.all([
      db.query.datasets.findFirst({ where: (d, { eq }) => eq(d.id, job.datasetId) }),
      job.evalDatasetId
        ? db.query.datasets.findFirst({ where: (d, { eq }) => eq(d.id, job.evalDatasetId as string) })
        : null,
    ]);
    if (!dataset) throw new Error(`dataset ${job.datasetId} of job ${job.id} vanished`);
    const checkpoint =
      job.checkpointKey && job.checkpointStep !== null && job.checkpointSha256 && job.checkpointBytes
        ? {
            ...(await presign("GET", job.checkpointKey)),
            step: job.checkpointStep,
            sha256: job.checkpointSha256,
            bytes: job.checkpointBytes,
          }
        : null;
    let init: z.infer<typeof ClaimSchema>["init"] = null;
    if (job.initFromVersionId) {
      const version = await db.query.modelVersions.findFirst({
        where: (v, { eq }) => eq(v.id, job.initFromVersionId as string),
      });
      const model = version && (await db.query.models.findFirst({ where: (m, { eq }) => eq(m.id, version.modelId) }));
      if (!version || !model) throw new Error(`init_from version ${job.initFromVersionId} of job ${job.id} vanished`);
      const files: Record<string, z.infer<typeof Signed> & { sha256: string; bytes: number }> = {};
      const weights = (version.manifest as { weights?: unknown }).weights;
      for (const name of [typeof weights === "string" ? weights : null, "tokenizer.json"]) {
        const f = name ? version.files[name] : undefined;
        if (name && f) files[name] = { ...(await presign("GET", f.key)), sha256: f.sha256, bytes: f.bytes };
      }
      init = { ref: `${model.name}@${version.version}`, manifest: version.manifest, files };
    }
    return c.json(
      {
        job: {
          id: job.id,
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
        checkpoint,
        init,
      },
      200,
    );
  });
