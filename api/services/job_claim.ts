// What a trainer is handed: a claimed job with its lease and presigned GETs for its inputs, and
// presigned PUTs for what it uploads. The claim itself is one guarded batch (decision 0003).
import { and, eq, gte, inArray, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import { type JobKind, trainingJobs } from "../../db/schema";
import type { Db } from "../db";
import { randomToken } from "../lib/crypto";
import type { Presign, SignedUrl } from "../lib/s3";
import { eventsWhere } from "./job_leases";
import { artifactPrefix, checkpointKey, findLeasedJob, type JobRow } from "./jobs";

const jobs = trainingJobs;

/**
 * Claims the tenant's oldest queued job (or one whose lease ran out) for `owner`, or returns null.
 * Idempotent per owner: a trainer that retries a claim whose answer it lost gets the same job back.
 * The same batch first ends jobs that no live trainer will end: cancels no heartbeat delivered, and
 * expired leases on the last allowed attempt (failed, not claimed again).
 */
export async function claimJob(
  db: Db,
  tenantId: string,
  owner: string,
  seconds: number,
): Promise<{ job: JobRow; token: string; expires: number } | null> {
  const now = Date.now();
  const expires = now + seconds * 1000;
  const held = await db.query.trainingJobs.findFirst({
    where: and(
      eq(jobs.tenantId, tenantId),
      eq(jobs.status, "running"),
      eq(jobs.leaseOwner, owner),
      gte(jobs.leaseExpiresAt, now),
    ),
  });
  let token = held?.leaseToken ?? null;
  if (held && token) {
    await db.update(jobs).set({ leaseExpiresAt: expires }).where(eq(jobs.id, held.id));
  } else {
    token = randomToken(32);
    const inTenant = eq(jobs.tenantId, tenantId);
    const stale = and(eq(jobs.status, "running"), lt(jobs.leaseExpiresAt, now));
    const undelivered = and(inTenant, isNotNull(jobs.cancelRequestedAt), or(eq(jobs.status, "queued"), stale));
    const exhausted = and(inTenant, stale, gte(jobs.attempts, jobs.maxAttempts));
    // One statement picks and takes the job (`id in (select … limit 1)`), so two concurrent claims
    // never get the same one: the second's sub-select no longer sees it as claimable.
    const next = db
      .select({ id: jobs.id })
      .from(jobs)
      .where(
        and(
          inTenant,
          isNull(jobs.cancelRequestedAt),
          lt(jobs.attempts, jobs.maxAttempts),
          or(eq(jobs.status, "queued"), stale),
        ),
      )
      .orderBy(jobs.createdAt, jobs.id)
      .limit(1);
    await db.batch([
      eventsWhere(db, undelivered, "cancelled"),
      db.update(jobs).set({ status: "cancelled", finishedAt: now, leaseToken: null }).where(undelivered),
      eventsWhere(db, exhausted, "failed", { data: sql`json_object('error', 'lease expired')` }),
      db
        .update(jobs)
        .set({
          status: "failed",
          finishedAt: now,
          leaseToken: null,
          error: sql`'lease expired on the last allowed attempt (' || ${jobs.attempts} || '/' || ${jobs.maxAttempts} || ')'`,
        })
        .where(exhausted),
      db
        .update(jobs)
        .set({
          status: "running",
          leaseOwner: owner,
          leaseToken: token,
          leaseExpiresAt: expires,
          attempts: sql`${jobs.attempts} + 1`,
          startedAt: sql`coalesce(${jobs.startedAt}, ${now})`,
        })
        .where(inArray(jobs.id, next)),
      eventsWhere(
        db,
        eq(jobs.leaseToken, token),
        sql`case when ${jobs.checkpointKey} is null then 'claimed' else 'resumed' end`,
        {
          step: sql`${jobs.checkpointStep}`,
          data: sql`json_object('owner', ${owner}, 'attempt', ${jobs.attempts})`,
        },
      ),
    ]);
  }
  const job = await db.query.trainingJobs.findFirst({ where: eq(jobs.leaseToken, token) });
  return job ? { job, token, expires } : null;
}

type Signed = SignedUrl & { sha256: string; bytes: number };

/** A claimed job as the trainer receives it: its config, the lease, and presigned URLs for its inputs. */
export type ClaimAnswer = {
  job: {
    id: string;
    kind: JobKind;
    model: string;
    modality: string;
    objective: string;
    preset: string;
    config: Record<string, unknown>;
    attempt: number;
    evalDataset: string | null;
  };
  lease: { owner: string; token: string; expiresAt: string; seconds: number };
  corpus: Signed & { format: string };
  evalSet: (SignedUrl & { sha256: string; format: string }) | null;
  checkpoint: (Signed & { step: number }) | null;
  init: { ref: string; manifest: Record<string, unknown>; files: Record<string, Signed> } | null;
};

/** Claims a job for `owner` (see claimJob) and signs what the trainer downloads; null when none waits. */
export async function claim(
  ctx: { db: Db; presign: Presign },
  tenantId: string,
  owner: string,
  seconds: number,
): Promise<ClaimAnswer | null> {
  const { db, presign } = ctx;
  const claimed = await claimJob(db, tenantId, owner, seconds);
  if (!claimed) return null;
  const { job, token, expires } = claimed;
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
  return {
    job: {
      id: job.id,
      kind: job.kind,
      model: job.modelName,
      modality: job.modality,
      objective: job.objective,
      preset: job.preset,
      // Pretraining: the trainer builds its TrainConfig from this as is (the columns plus the
      // hyperparameters). Fine-tuning: the FinetuneHyperparameters only; the rest is the base's.
      config:
        job.kind === "finetune"
          ? job.config
          : { objective: job.objective, preset: job.preset, modality: job.modality, ...job.config },
      attempt: job.attempts,
      evalDataset: job.evalDatasetId,
    },
    lease: { owner, token, expiresAt: new Date(expires).toISOString(), seconds },
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
    init: job.initFromVersionId ? await initGrant(db, presign, job) : null,
  };
}

/**
 * For a job continuing a version (`init_from`) or fine-tuning one (`base`): its manifest and
 * presigned GETs for its weights and (text) tokenizer.
 */
async function initGrant(db: Db, presign: Presign, job: JobRow): Promise<ClaimAnswer["init"]> {
  const version = await db.query.modelVersions.findFirst({
    where: (v, { eq }) => eq(v.id, job.initFromVersionId as string),
  });
  const model = version && (await db.query.models.findFirst({ where: (m, { eq }) => eq(m.id, version.modelId) }));
  if (!version || !model) throw new Error(`init_from version ${job.initFromVersionId} of job ${job.id} vanished`);
  const files: Record<string, Signed> = {};
  const weights = (version.manifest as { weights?: unknown }).weights;
  for (const name of [typeof weights === "string" ? weights : null, "tokenizer.json"]) {
    const f = name ? version.files[name] : undefined;
    if (name && f) files[name] = { ...(await presign("GET", f.key)), sha256: f.sha256, bytes: f.bytes };
  }
  return { ref: `${model.name}@${version.version}`, manifest: version.manifest, files };
}

/**
 * Presigned PUTs for a leased job's artifact files and, with `checkpointStep`, its checkpoint. Keys
 * are per attempt (see artifactPrefix), so a replica that lost its lease cannot reach the current one's.
 */
export async function signUploads(
  ctx: { db: Db; presign: Presign },
  tenantId: string,
  id: string,
  request: { lease_token: string; checkpoint_step?: number; files: string[] },
) {
  const job = await findLeasedJob(ctx.db, tenantId, id, request.lease_token);
  const put = async (key: string) => ({ ...(await ctx.presign("PUT", key)), method: "PUT" as const });
  const files: Record<string, SignedUrl & { method: "PUT" }> = {};
  for (const name of request.files) files[name] = await put(`${artifactPrefix(job)}/${name}`);
  const step = request.checkpoint_step;
  return { checkpoint: step === undefined ? null : await put(checkpointKey(job, step)), files };
}
