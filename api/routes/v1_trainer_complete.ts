import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Promotion } from "../../db/schema";
import { jobEvents, models, modelVersions, trainingJobs } from "../../db/schema";
import { newId } from "../lib/crypto";
import { ApiError, badRequest, conflict, errorResponses, unprocessable, zodFieldErrors } from "../lib/errors";
import { JobSchema, jobView } from "../lib/job_views";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { checkStoredArtifacts, versionFiles } from "../services/artifacts";
import { artifactPrefix, findJob, findLeasedJob } from "../services/jobs";
import { ManifestSchema } from "../services/manifest";
import { decidePromotion } from "../services/promotion";
import { formatRef } from "../services/refs";
import { refOfVersion, registerVersionStatements, resolveVersion } from "../services/registry";

const route = createRoute({
  method: "post",
  path: "/v1/trainer/jobs/{id}/complete",
  tags: ["trainer"],
  summary: "Finish a job: verify every artifact, register the version, move `latest` — in one batch",
  description:
    "Every file's size and SHA-256 are checked, the graph is loaded and run once on a probe input (as for imports), " +
    'then the version is registered. With the job\'s `promote: "always"` `latest` moves to it. With ' +
    '`"if_better"` the API first scores the new version and the current `latest` with the same linear probe on ' +
    "the job's eval set (the POST /v1/evaluations code path: one seeded split, the serving runtime) — synchronously, " +
    "inside this call (it can take a while; the trainer waits up to 300 s) — and moves `latest` only if the new one " +
    "is strictly better (or there is no `latest` yet). Both numbers land in the job's `promotion` and a `promotion` " +
    "event; the version is registered either way. A stale `error` from an earlier failed attempt is cleared.",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(z.object({ lease_token: z.string(), manifest: z.record(z.string(), z.unknown()) })),
  },
  responses: { 200: jsonResponse(JobSchema, "The succeeded job with its `modelVersion`."), ...errorResponses },
});

/** The messages of an error and its causes (drizzle wraps D1's SQLite error in its own). */
const errorChain = (e: unknown): string => {
  const parts: string[] = [];
  for (let cur = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) parts.push(String(cur));
  return parts.join(" | ");
};

export const registerV1TrainerComplete = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const body = c.req.valid("json");
    const tenantId = c.get("auth").tenantId;
    const job = await findLeasedJob(db, tenantId, c.req.valid("param").id, body.lease_token);
    const parsed = ManifestSchema.safeParse(body.manifest);
    if (!parsed.success) {
      const errors = zodFieldErrors(parsed.error.issues, "manifest");
      throw badRequest(`${errors[0]?.path}: ${errors[0]?.message}`, errors);
    }
    const manifest = parsed.data;
    if (manifest.modality !== job.modality) {
      throw badRequest(`manifest.modality: is ${manifest.modality}, the job trains a ${job.modality} encoder.`);
    }
    const prefix = artifactPrefix(job);
    const problems = await checkStoredArtifacts(c.env.ARTIFACTS, prefix, manifest);
    if (problems.length > 0) throw unprocessable(`${problems[0]?.path}: ${problems[0]?.message}`, problems);
    await storage.put(`${prefix}/manifest.json`, JSON.stringify(manifest), "application/json");

    const steps = (manifest.config as { steps?: unknown } | undefined)?.steps;
    const total = typeof steps === "number" ? steps : (job.progress?.total ?? 0);
    const versionId = newId("mv");
    const files = versionFiles(prefix, manifest);
    const initFrom = await refOfVersion(db, job.initFromVersionId);
    const registered = {
      ...manifest,
      lineage: { job: job.id, dataset: job.datasetId, ...(initFrom ? { init_from: initFrom } : {}) },
    };

    let promotion: Promotion | null = null;
    if (job.promote === "if_better" && job.evalDatasetId) {
      const incumbent = await resolveVersion(db, tenantId, `${job.modelName}@latest`).catch(() => null);
      const [{ next } = { next: 1 }] = await db
        .select({ next: sql<number>`coalesce(max(${modelVersions.version}), 0) + 1` })
        .from(modelVersions)
        .innerJoin(models, eq(models.id, modelVersions.modelId))
        .where(and(eq(models.tenantId, tenantId), eq(models.name, job.modelName)));
      promotion = await decidePromotion(
        { db, storage, bucket: c.env.ARTIFACTS, tenantId },
        job.evalDatasetId,
        c.var.services.settings.precision,
        {
          ref: `${job.modelName}@${next}`,
          version: { id: versionId, modality: job.modality, dims: manifest.dims, manifest: registered, files },
        },
        incumbent
          ? { ref: formatRef(incumbent.model.name, incumbent.version.version), version: incumbent.version }
          : null,
      );
    }
    const promoted = promotion ? promotion.promoted : true;
    const fmt = (x: number | null | undefined) => (typeof x === "number" ? x.toFixed(4) : "n/a");
    const reason = promotion
      ? promotion.incumbent
        ? `promote if_better: linear ${fmt(promotion.candidate.linear)} > ${fmt(promotion.incumbent.linear)} (${promotion.incumbent.ref}) on ${promotion.evalDataset}`
        : `promote if_better: no previous latest (linear ${fmt(promotion.candidate.linear)} on ${promotion.evalDataset})`
      : undefined;
    const now = Date.now();
    try {
      await db.batch([
        db
          .update(trainingJobs)
          .set({
            status: "succeeded",
            modelVersionId: versionId,
            finishedAt: now,
            leaseToken: null,
            leaseExpiresAt: null,
            // The last heartbeat may predate the final steps; a finished job has done all of them.
            progress: { step: total, total },
            // An earlier attempt's failure text is history (kept in the events), not the job's state.
            error: null,
            promotion,
          })
          .where(
            and(
              eq(trainingJobs.id, job.id),
              eq(trainingJobs.leaseToken, body.lease_token),
              eq(trainingJobs.status, "running"),
              // A job the user cancelled registers nothing, even if training finished first.
              isNull(trainingJobs.cancelRequestedAt),
            ),
          ),
        ...registerVersionStatements(db, {
          tenantId,
          modelName: job.modelName,
          modality: job.modality,
          versionId,
          dims: manifest.dims,
          manifest: registered,
          files,
          source: "training",
          jobId: job.id,
          datasetId: job.datasetId,
          actorKeyId: null,
          moveLatest: promoted,
          reason,
        }),
        // Guard: job_id is NOT NULL, so when the lease changed under us (the update above matched
        // nothing) this insert fails and D1 rolls the whole batch back — no orphan version.
        db.insert(jobEvents).values({
          jobId: sql`(select id from ${trainingJobs} where id = ${job.id} and model_version_id = ${versionId})`,
          kind: "succeeded",
          data: { version_id: versionId },
        }),
        ...(promotion
          ? [
              db
                .insert(jobEvents)
                .values({ jobId: job.id, kind: "promotion", data: promotion as unknown as Record<string, unknown> }),
            ]
          : []),
      ]);
    } catch (e) {
      const text = errorChain(e);
      if (text.includes("NOT NULL constraint failed: job_events.job_id")) {
        throw conflict(`Job ${job.id} was cancelled or its lease changed while completing; nothing was registered.`);
      }
      if (text.includes("UNIQUE constraint failed: model_versions")) {
        // 503, not 409: the trainer retries a 5xx on /complete, while a 409 tells it to stop.
        throw new ApiError(
          503,
          "busy",
          `Another version of \`${job.modelName}\` was registered at the same moment; retry /complete.`,
        );
      }
      throw e;
    }
    return c.json(await jobView(db, await findJob(db, tenantId, job.id), true), 200);
  });
