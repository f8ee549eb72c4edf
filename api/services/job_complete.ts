// A trainer's /complete: check the manifest against the job and every stored artifact against the
// manifest, optionally score the new version against `latest` (promote: if_better), then register
// the version, move `latest` and mark the job succeeded in one `db.batch` (decision 0003).
import { and, eq, isNull, sql } from "drizzle-orm";
import { jobEvents, models, modelVersions, type Promotion, trainingJobs } from "../../db/schema";
import type { Db } from "../db";
import { newId } from "../lib/crypto";
import { ApiError, conflict, type FieldError, unprocessable } from "../lib/errors";
import type { Settings } from "../settings";
import { checkStoredArtifacts, versionFiles } from "./artifacts";
import { artifactPrefix, findJob, findLeasedJob, type JobRow } from "./jobs";
import { type Manifest, parseManifest } from "./manifest";
import { decidePromotion } from "./promotion";
import { formatRef } from "./refs";
import { forgetAliases, refOfVersion, registerVersionStatements, resolveVersion } from "./registry";
import type { Storage } from "./storage";

type Ctx = { db: Db; storage: Storage; settings: Settings };

/** The messages of an error and its causes (drizzle wraps D1's SQLite error in its own). */
const errorChain = (e: unknown): string => {
  const parts: string[] = [];
  for (let cur = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) parts.push(String(cur));
  return parts.join(" | ");
};

/**
 * The manifest must describe what the job trained: its modality and its objective (the trainer
 * writes both). A 422 naming each field that disagrees; nothing is stored or registered.
 */
export function checkManifestMatchesJob(manifest: Manifest, job: Pick<JobRow, "modality" | "objective">) {
  const errors: FieldError[] = [];
  if (manifest.modality !== job.modality) {
    errors.push({
      path: "manifest.modality",
      message: `is ${manifest.modality}, the job trains a ${job.modality} encoder`,
    });
  }
  const objective = (manifest as { objective?: unknown }).objective;
  if (objective !== job.objective) {
    errors.push({
      path: "manifest.objective",
      message: `${objective === undefined ? "is missing" : `is ${JSON.stringify(objective)}`}, the job trains ${job.objective}`,
    });
  }
  if (errors.length > 0) throw unprocessable(`${errors[0]?.path}: ${errors[0]?.message}.`, errors);
}

/**
 * A fine-tune job's manifest carries its head, and the head predicts the training set's labels
 * (each once, any order): a 422 naming `manifest.head` or `manifest.head.labels` otherwise.
 */
export async function checkHeadMatchesJob(db: Db, manifest: Manifest, job: JobRow) {
  if (job.kind !== "finetune") return;
  if (!manifest.head) {
    throw unprocessable(
      'manifest.head: is missing; a fine-tune job registers a classifier: export the `logits` output and add `head: {"output": "logits", "labels": [...], "activation": "softmax"}`.',
      [{ path: "manifest.head", message: "required for a fine-tune job" }],
    );
  }
  const dataset = await db.query.datasets.findFirst({ where: (d, { eq }) => eq(d.id, job.datasetId) });
  const want = Object.keys((dataset?.stats as { labels?: Record<string, number> } | null)?.labels ?? {});
  const got = manifest.head.labels;
  const missing = want.filter((l) => !got.includes(l));
  const extra = got.filter((l) => !want.includes(l));
  if (want.length > 0 && (missing.length > 0 || extra.length > 0)) {
    const list = (xs: string[]) =>
      xs
        .slice(0, 5)
        .map((x) => JSON.stringify(x))
        .join(", ") + (xs.length > 5 ? ", …" : "");
    const parts = [missing.length ? `lacks ${list(missing)}` : "", extra.length ? `adds ${list(extra)}` : ""];
    const message = `${parts.filter(Boolean).join(" and ")} compared with dataset ${job.datasetId}'s labels`;
    throw unprocessable(`manifest.head.labels: ${message}.`, [{ path: "manifest.head.labels", message }]);
  }
}

/** Finishes a leased job with the trainer's manifest; returns the succeeded job. */
export async function completeJob(
  ctx: Ctx,
  tenantId: string,
  id: string,
  body: { lease_token: string; manifest: unknown },
): Promise<JobRow> {
  const { db, storage } = ctx;
  const job = await findLeasedJob(db, tenantId, id, body.lease_token);
  const manifest = parseManifest(body.manifest);
  checkManifestMatchesJob(manifest, job);
  await checkHeadMatchesJob(db, manifest, job);
  const prefix = artifactPrefix(job);
  const problems = await checkStoredArtifacts(storage.bucket, prefix, manifest);
  if (problems.length > 0) throw unprocessable(`${problems[0]?.path}: ${problems[0]?.message}`, problems);
  await storage.put(`${prefix}/manifest.json`, JSON.stringify(manifest), "application/json");

  const steps = (manifest.config as { steps?: unknown } | undefined)?.steps;
  const total = typeof steps === "number" ? steps : (job.progress?.total ?? 0);
  const versionId = newId("mv");
  const files = versionFiles(prefix, manifest);
  const start = await refOfVersion(db, job.initFromVersionId);
  // The job's record of where the weights came from wins over what the trainer wrote.
  const registered =
    job.kind === "finetune"
      ? {
          ...manifest,
          ...(start ? { finetuned_from: start } : {}),
          lineage: {
            job: job.id,
            dataset: job.datasetId,
            ...(job.evalDatasetId ? { eval_dataset: job.evalDatasetId } : {}),
            ...(start ? { finetuned_from: start } : {}),
          },
        }
      : {
          ...manifest,
          lineage: { job: job.id, dataset: job.datasetId, ...(start ? { init_from: start } : {}) },
        };
  const promotion =
    job.promote === "if_better" && job.evalDatasetId
      ? await promote(ctx, tenantId, job, job.evalDatasetId, { id: versionId, manifest: registered, files })
      : null;
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
    // `latest` may have moved: a request that cached the old alias while the batch ran must not keep it.
    forgetAliases(tenantId);
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
  return findJob(db, tenantId, job.id);
}

/**
 * promote: if_better — the new version and the current `latest` scored by the same linear probe on
 * the job's eval set (services/promotion.ts); the version is registered whatever the outcome.
 */
async function promote(
  ctx: Ctx,
  tenantId: string,
  job: JobRow,
  evalDatasetId: string,
  candidate: { id: string; manifest: Manifest & Record<string, unknown>; files: ReturnType<typeof versionFiles> },
): Promise<Promotion> {
  const { db, storage } = ctx;
  const incumbent = await resolveVersion(db, tenantId, `${job.modelName}@latest`).catch(() => null);
  const [{ next } = { next: 1 }] = await db
    .select({ next: sql<number>`coalesce(max(${modelVersions.version}), 0) + 1` })
    .from(modelVersions)
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .where(and(eq(models.tenantId, tenantId), eq(models.name, job.modelName)));
  return decidePromotion(
    { db, storage, bucket: storage.bucket, tenantId },
    evalDatasetId,
    ctx.settings.precision,
    {
      ref: `${job.modelName}@${next}`,
      version: { ...candidate, modality: job.modality, dims: candidate.manifest.dims },
    },
    incumbent ? { ref: formatRef(incumbent.model.name, incumbent.version.version), version: incumbent.version } : null,
  );
}
