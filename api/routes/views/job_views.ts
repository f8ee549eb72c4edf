import { z } from "@hono/zod-openapi";
import { asc, eq } from "drizzle-orm";
import { JOB_KINDS, JOB_STATUSES, jobEvents, models, modelVersions, PROMOTE_POLICIES } from "../../../db/schema";
import type { Db } from "../../db";
import { iso, Timestamp } from "../../lib/schemas";
import type { JobRow } from "../../services/jobs";
import { refOfVersion } from "../../services/registry";

const Point = z.object({ step: z.number().int() }).catchall(z.number());

export const JobSchema = z
  .object({
    id: z.string().openapi({ example: "job_mi1x2y3zAbCdEfGhIjKl" }),
    object: z.enum(["pretraining.job", "finetuning.job"]),
    kind: z.enum(JOB_KINDS).openapi({
      description: "`pretrain` (/v1/pretraining/jobs) or `finetune` (/v1/finetuning/jobs).",
    }),
    status: z.enum(JOB_STATUSES),
    model: z.string().openapi({ example: "demo" }),
    modelVersion: z.string().nullable().openapi({ example: "demo@2", description: "Set once the job succeeded." }),
    dataset: z.string(),
    evalDataset: z.string().nullable(),
    modality: z.string(),
    objective: z.string().openapi({ example: "mlm", description: "Fine-tune jobs: `classify`." }),
    preset: z.string().openapi({ example: "tiny" }),
    hyperparameters: z.record(z.string(), z.unknown()),
    progress: z.object({
      step: z.number().int(),
      total: z.number().int(),
      fraction: z.number(),
      etaSeconds: z.number().nullable(),
    }),
    metrics: z
      .record(z.string(), z.number())
      .nullable()
      .openapi({ example: { loss: 4.1, tokens_per_second: 5200 } }),
    lossCurve: z.array(Point).openapi({
      example: [
        { step: 10, loss: 7.9 },
        { step: 20, loss: 6.8 },
      ],
    }),
    evalCurve: z.array(Point).openapi({ example: [{ step: 100, knn_accuracy: 0.61, linear_accuracy: 0.66 }] }),
    events: z.array(
      z.object({
        kind: z.string(),
        step: z.number().int().nullable(),
        at: Timestamp,
        data: z.record(z.string(), z.unknown()).nullable(),
      }),
    ),
    initFrom: z.string().nullable().openapi({
      example: "minilm@1",
      description: "A pretraining job: the version it continues (`init_from`, resolved at creation).",
    }),
    base: z.string().nullable().openapi({
      example: "demo@1",
      description: "A fine-tune job: the version it fine-tunes (`base`, resolved at creation); null for pretraining.",
    }),
    promote: z.enum(PROMOTE_POLICIES),
    promotion: z
      .object({
        policy: z.enum(PROMOTE_POLICIES),
        candidate: z.object({ ref: z.string(), linear: z.number().nullable(), error: z.string().optional() }),
        incumbent: z
          .object({ ref: z.string(), linear: z.number().nullable(), error: z.string().optional() })
          .nullable(),
        promoted: z.boolean(),
        evalDataset: z.string(),
      })
      .nullable()
      .openapi({
        description:
          "`if_better` jobs, once complete: linear-probe accuracy of the new version and of the `latest` it was compared with, and whether `latest` moved.",
        example: {
          policy: "if_better",
          candidate: { ref: "demo@3", linear: 0.74 },
          incumbent: { ref: "demo@2", linear: 0.71 },
          promoted: true,
          evalDataset: "ds_mi1x2y3zAbCdEfGhIjKl",
        },
      }),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    error: z.string().nullable(),
    createdAt: Timestamp,
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
  })
  .openapi("TrainingJob");

const LIFECYCLE = new Set([
  "queued",
  "claimed",
  "checkpoint",
  "resumed",
  "cancel_requested",
  "cancelled",
  "failed",
  "retry",
  "released",
  "succeeded",
  "promotion",
]);

/** A job as users see it; `detail` adds the curves and events (one more query). */
export async function jobView(db: Db, job: JobRow, detail: boolean): Promise<z.infer<typeof JobSchema>> {
  const events = detail
    ? await db.select().from(jobEvents).where(eq(jobEvents.jobId, job.id)).orderBy(asc(jobEvents.id))
    : [];
  let modelVersion: string | null = null;
  if (job.modelVersionId) {
    const [row] = await db
      .select({ name: models.name, version: modelVersions.version })
      .from(modelVersions)
      .innerJoin(models, eq(models.id, modelVersions.modelId))
      .where(eq(modelVersions.id, job.modelVersionId));
    if (row) modelVersion = `${row.name}@${row.version}`;
  }
  const startRef = await refOfVersion(db, job.initFromVersionId);
  const step = job.progress?.step ?? 0;
  const total = job.progress?.total ?? (typeof job.config.steps === "number" ? job.config.steps : 0);
  const num = (d: Record<string, unknown> | null) =>
    Object.fromEntries(Object.entries(d ?? {}).filter(([, v]) => typeof v === "number")) as Record<string, number>;
  return {
    id: job.id,
    object: job.kind === "finetune" ? "finetuning.job" : "pretraining.job",
    kind: job.kind,
    status: job.status,
    model: job.modelName,
    modelVersion,
    dataset: job.datasetId,
    evalDataset: job.evalDatasetId,
    modality: job.modality,
    objective: job.objective,
    preset: job.preset,
    hyperparameters: job.config,
    progress: {
      step,
      total,
      fraction: total > 0 ? Math.min(1, step / total) : job.status === "succeeded" ? 1 : 0,
      etaSeconds: job.status === "running" ? (job.progress?.etaSeconds ?? null) : null,
    },
    metrics: job.metrics ?? null,
    lossCurve: events
      .filter((e) => e.kind === "metrics" && e.step !== null)
      .map((e) => ({ ...num(e.data), step: e.step as number })),
    evalCurve: events
      .filter((e) => e.kind === "eval" && e.step !== null)
      .map((e) => ({ ...num(e.data), step: e.step as number })),
    events: events
      .filter((e) => LIFECYCLE.has(e.kind))
      .map((e) => ({ kind: e.kind, step: e.step, at: iso(e.createdAt) as string, data: e.data ?? null })),
    initFrom: job.kind === "pretrain" ? startRef : null,
    base: job.kind === "finetune" ? startRef : null,
    promote: job.promote,
    promotion: job.promotion ?? null,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    error: job.error,
    createdAt: iso(job.createdAt) as string,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
  };
}
