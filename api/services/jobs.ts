import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { type Modality, trainingJobs } from "../../db/schema";
import { conflict, notFound } from "../lib/errors";
import type { Db } from "../middleware/init";

export const OBJECTIVES: Record<Modality, readonly string[]> = {
  text: ["mlm", "simcse", "mlm+simcse", "mlm+nsp"],
  image: ["simclr", "mae"],
  timeseries: ["masked", "temporal"],
};
export const PRESETS = ["tiny", "mini", "small", "base"] as const;

/**
 * Lease length; a trainer heartbeats every few seconds, so a dozen missed beats lose the job.
 * `TRAINER_LEASE_SECONDS` shortens it (the end-to-end test's crash drill).
 */
export const leaseSeconds = (env: { TRAINER_LEASE_SECONDS?: string }) => {
  const n = Number(env.TRAINER_LEASE_SECONDS);
  return Number.isFinite(n) && n >= 1 ? n : 60;
};

/**
 * Hyperparameters a job may set, with their ranges. The names are the trainer's TrainConfig fields,
 * so the trainer takes the stored config as is; unknown keys are refused here rather than there.
 * (`matryoshka_dims` is left out until an objective trains the truncated sizes.)
 */
export const Hyperparameters = z
  .object({
    steps: z.number().int().min(1).max(10_000_000).optional(),
    epochs: z.number().gt(0).max(1000).optional(),
    batch_size: z.number().int().min(1).max(8192).optional(),
    grad_accum: z.number().int().min(1).max(1024).optional(),
    lr: z.number().gt(0).max(1).optional(),
    weight_decay: z.number().min(0).max(1).optional(),
    warmup_ratio: z.number().min(0).lt(1).optional(),
    schedule: z.enum(["cosine", "linear"]).optional(),
    grad_clip: z.number().gt(0).max(1000).optional(),
    mask_rate: z.number().gt(0).lt(1).optional(),
    simcse_temperature: z.number().gt(0).max(10).optional(),
    mlm_fraction: z.number().gt(0).lt(1).optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional(),
    vocab_size: z.number().int().min(100).max(250_000).optional(),
    max_tokens: z.number().int().min(8).max(8192).optional(),
    dropout: z.number().min(0).lt(1).optional(),
    pooling: z.enum(["mean", "cls"]).optional(),
    checkpoint_every: z.number().int().min(0).max(10_000_000).optional(),
    eval_every: z.number().int().min(0).max(10_000_000).optional(),
  })
  .strict()
  .openapi("Hyperparameters", { example: { steps: 300, batch_size: 32, lr: 0.0005, checkpoint_every: 100 } });
export type Hyperparameters = z.infer<typeof Hyperparameters>;

export type JobRow = typeof trainingJobs.$inferSelect;

export async function findJob(db: Db, tenantId: string, id: string): Promise<JobRow> {
  const job = await db.query.trainingJobs.findFirst({
    where: and(eq(trainingJobs.id, id), eq(trainingJobs.tenantId, tenantId)),
  });
  if (!job) throw notFound(`No pretraining job \`${id}\` in this tenant; GET /v1/pretraining/jobs lists them.`);
  return job;
}

/** The job, if `token` is its current lease; a 409 otherwise (another replica owns it, or it ended). */
export async function findLeasedJob(db: Db, tenantId: string, id: string, token: string): Promise<JobRow> {
  const job = await findJob(db, tenantId, id);
  if (job.status !== "running" || job.leaseToken !== token) {
    throw conflict(
      `The lease token is stale: job ${id} is ${job.status}${job.status === "running" ? " under another lease" : ""}. Stop working on it.`,
    );
  }
  return job;
}

// Keys are per attempt: a replica that lost its lease still holds presigned URLs for a while, and
// they must not reach the objects the current attempt writes (or a registered version reads).
type Attempt = { tenantId: string; id: string; attempts: number };
export const artifactPrefix = (job: Attempt) => `jobs/${job.tenantId}/${job.id}/attempt-${job.attempts}/artifacts`;
// One object per step: a replica killed between uploading a newer checkpoint and declaring it must
// not have overwritten the one the job record points at.
export const checkpointKey = (job: Attempt, step: number) =>
  `jobs/${job.tenantId}/${job.id}/attempt-${job.attempts}/checkpoint-${step}.tar`;
