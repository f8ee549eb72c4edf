// The lease state machine (decision 0003): heartbeat, fail and cancel here, claim in job_claim.ts,
// completion in job_complete.ts. D1 has no interactive transactions, so each transition is one
// `db.batch` whose statements carry their own guards (status, lease token, cancel request) in their
// `where`: a write that lost a race matches no row and changes nothing, instead of acting on what an
// earlier read saw.
import { and, eq, inArray, isNull, type SQL, sql } from "drizzle-orm";
import type { JobKind } from "../../db/schema";
import { jobEvents, trainingJobs } from "../../db/schema";
import type { Db } from "../db";
import { badRequest, conflict } from "../lib/errors";
import { checkpointKey, findJob, findLeasedJob, type JobRow } from "./jobs";
import type { Storage } from "./storage";

const jobs = trainingJobs;

/**
 * `insert into job_events … select` one event per job matching `where` (none when none does), so an
 * event is written exactly when the guarded update next to it in the batch applies. Drizzle's
 * insert-select wants every column, in table order.
 */
export function eventsWhere(
  db: Db,
  where: SQL | undefined,
  kind: string | SQL,
  extra: { step?: SQL; data?: SQL } = {},
) {
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
export async function cancelJob(db: Db, tenantId: string, id: string, kind?: JobKind): Promise<JobRow> {
  const job = await findJob(db, tenantId, id, kind);
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
