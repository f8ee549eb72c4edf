// The lease state machine (decision 0003): claim, heartbeat, fail and cancel. D1 has no interactive
// transactions, so each transition is one `db.batch` whose statements carry their own guards (status,
// lease token, cancel request) in their `where`: a write that lost a race matches no row and changes
// nothing, instead of acting on what an earlier read saw. Completion is in job_complete.ts.
import { and, eq, gte, inArray, isNotNull, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import { jobEvents, trainingJobs } from "../../db/schema";
import type { Db } from "../db";
import { randomToken } from "../lib/crypto";
import { badRequest, conflict } from "../lib/errors";
import type { Presign, SignedUrl } from "../lib/s3";
import { artifactPrefix, checkpointKey, findJob, findLeasedJob, type JobRow } from "./jobs";
import type { Storage } from "./storage";

const jobs = trainingJobs;

/**
 * `insert into job_events … select` one event per job matching `where` (none when none does), so an
 * event is written exactly when the guarded update next to it in the batch applies. Drizzle's
 * insert-select wants every column, in table order.
 */
function eventsWhere(db: Db, where: SQL | undefined, kind: string | SQL, extra: { step?: SQL; data?: SQL } = {}) {
  return db.insert(jobEvents).select(
    db
      .select({
        id: sql<number>`null`.as("id"),
        jobId: jobs.id,
        kind: sql<string>`${kind}`.as("kind"),
        step: (extra.step ?? sql<number | null>`null`).as("step"),
        data: (extra.data ?? sql`null`).as("data"),
        createdAt: sql<number>`${jobEvents.createdAt.default as SQL}`.as("created_at"),
      })
      .from(jobs)
      .where(where),
  );
}

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

/** What a trainer reports on each heartbeat (the route's body). */
export type Beat = {
  lease_token: string;
  step: number;
  total_steps: number;
  eta_seconds?: number;
  metrics?: Record<string, number>;
  eval?: Record<string, number>;
  checkpoint_step?: number;
  checkpoint_sha256?: string;
  checkpoint_bytes?: number;
};

/**
 * Records progress, metrics and a declared checkpoint, and extends the lease. A job whose cancel was
 * requested is marked cancelled instead, and the answer tells the trainer to stop. `background`
 * takes the best-effort removal of the superseded checkpoint (the Worker's `waitUntil`).
 */
export async function heartbeat(
  ctx: { db: Db; storage: Storage; background: (work: Promise<unknown>) => void },
  tenantId: string,
  id: string,
  beat: Beat,
  seconds: number,
): Promise<{ cancel: boolean; leaseExpiresAt: string | null }> {
  const { db, storage } = ctx;
  const job = await findLeasedJob(db, tenantId, id, beat.lease_token);
  const leased = and(eq(jobs.id, job.id), eq(jobs.leaseToken, beat.lease_token), eq(jobs.status, "running"));
  const now = Date.now();

  if (job.cancelRequestedAt !== null) {
    await db.batch([
      db
        .update(jobs)
        .set({ status: "cancelled", finishedAt: now, leaseToken: null, leaseExpiresAt: null })
        .where(leased),
      db.insert(jobEvents).values({ jobId: job.id, kind: "cancelled", step: beat.step }),
    ]);
    return { cancel: true, leaseExpiresAt: null };
  }
  const ckpt = beat.checkpoint_step === undefined ? null : checkpointKey(job, beat.checkpoint_step);
  if (ckpt !== null) {
    const head = await storage.head(ckpt);
    if (!head) {
      throw badRequest("checkpoint_step: no checkpoint was uploaded; PUT it to the URL from /uploads first.", [
        { path: "checkpoint_step", message: "checkpoint object not found" },
      ]);
    }
    if (head.size !== beat.checkpoint_bytes) {
      throw badRequest(`checkpoint_bytes: the stored checkpoint is ${head.size} bytes, not ${beat.checkpoint_bytes}.`, [
        { path: "checkpoint_bytes", message: `stored object is ${head.size} bytes` },
      ]);
    }
  }
  const expires = now + seconds * 1000;
  const [updated] = await db.batch([
    db
      .update(jobs)
      .set({
        leaseExpiresAt: expires,
        progress: { step: beat.step, total: beat.total_steps, etaSeconds: beat.eta_seconds },
        ...(beat.metrics ? { metrics: { ...(job.metrics ?? {}), ...beat.metrics, ...(beat.eval ?? {}) } } : {}),
        ...(ckpt !== null
          ? {
              checkpointKey: ckpt,
              checkpointStep: beat.checkpoint_step,
              checkpointSha256: beat.checkpoint_sha256,
              checkpointBytes: beat.checkpoint_bytes,
            }
          : {}),
      })
      .where(leased)
      .returning({ id: jobs.id }),
    ...(beat.metrics
      ? [db.insert(jobEvents).values({ jobId: job.id, kind: "metrics", step: beat.step, data: beat.metrics })]
      : []),
    ...(beat.eval
      ? [db.insert(jobEvents).values({ jobId: job.id, kind: "eval", step: beat.step, data: beat.eval })]
      : []),
    ...(ckpt !== null
      ? [db.insert(jobEvents).values({ jobId: job.id, kind: "checkpoint", step: beat.checkpoint_step })]
      : []),
  ] as const);
  if (updated.length === 0) throw conflict(`The lease on job ${job.id} changed while reporting; stop working on it.`);
  // The previous checkpoint is superseded; keep storage to one per job (best effort).
  if (ckpt !== null && job.checkpointKey && job.checkpointKey !== ckpt) {
    ctx.background(storage.delete([job.checkpointKey]).catch(() => {}));
  }
  return { cancel: false, leaseExpiresAt: new Date(expires).toISOString() };
}

/**
 * Gives a leased job up: requeued while a retryable failure has attempts left, or on a graceful
 * `release` (which does not count the attempt); failed otherwise.
 */
export async function failJob(
  db: Db,
  tenantId: string,
  id: string,
  report: { lease_token: string; error: string; retryable: boolean; release: boolean },
): Promise<JobRow> {
  const job = await findLeasedJob(db, tenantId, id, report.lease_token);
  const retry = report.release || (report.retryable && job.attempts < job.maxAttempts);
  await db.batch([
    db
      .update(jobs)
      .set({
        status: retry ? "queued" : "failed",
        error: report.error,
        leaseToken: null,
        leaseOwner: null,
        leaseExpiresAt: null,
        finishedAt: retry ? null : Date.now(),
        ...(report.release ? { attempts: sql`max(${jobs.attempts} - 1, 0)` } : {}),
      })
      .where(and(eq(jobs.id, job.id), eq(jobs.leaseToken, report.lease_token))),
    db.insert(jobEvents).values({
      jobId: job.id,
      kind: report.release ? "released" : retry ? "retry" : "failed",
      data: { error: report.error },
    }),
  ]);
  return findJob(db, tenantId, job.id);
}

/**
 * Cancels a queued job at once, or asks a running one's trainer to stop at its next heartbeat. One
 * batch whose statements read the status themselves, so a claim landing between our read and these
 * writes cannot make us cancel a job that already runs (it gets a cancel request instead).
 */
export async function cancelJob(db: Db, tenantId: string, id: string): Promise<JobRow> {
  const job = await findJob(db, tenantId, id);
  if (job.status === "succeeded" || job.status === "failed") throw conflict(`Job ${job.id} already ${job.status}.`);
  const now = Date.now();
  const mine = and(eq(jobs.id, job.id), eq(jobs.tenantId, job.tenantId));
  const queued = and(mine, eq(jobs.status, "queued"));
  await db.batch([
    eventsWhere(db, and(mine, eq(jobs.status, "running"), isNull(jobs.cancelRequestedAt)), "cancel_requested"),
    eventsWhere(db, queued, "cancelled"),
    db
      .update(jobs)
      .set({ cancelRequestedAt: sql`coalesce(${jobs.cancelRequestedAt}, ${now})` })
      .where(and(mine, inArray(jobs.status, ["queued", "running"]))),
    db.update(jobs).set({ status: "cancelled", finishedAt: now }).where(queued),
  ]);
  return findJob(db, job.tenantId, job.id);
}

type Signed = SignedUrl & { sha256: string; bytes: number };

/** A claimed job as the trainer receives it: its config, the lease, and presigned URLs for its inputs. */
export type ClaimAnswer = {
  job: {
    id: string;
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
      model: job.modelName,
      modality: job.modality,
      objective: job.objective,
      preset: job.preset,
      // The trainer builds its TrainConfig from this as is: the columns plus the hyperparameters.
      config: { objective: job.objective, preset: job.preset, modality: job.modality, ...job.config },
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

/** For a job continuing a version (`init_from`): its manifest and presigned GETs for weights and tokenizer. */
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
