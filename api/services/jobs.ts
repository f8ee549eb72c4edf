import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { type Modality, trainingJobs } from "../../db/schema";
import type { Db } from "../db";
import { ApiError, conflict, notFound, unprocessable } from "../lib/errors";
import { resolveVersion } from "./registry";

export const OBJECTIVES: Record<Modality, readonly string[]> = {
  text: ["mlm", "simcse", "mlm+simcse", "mlm+nsp"],
  image: ["simclr", "mae"],
  timeseries: ["masked", "temporal", "contrastive"],
};
/** Encoder families per modality (the trainer's ARCHITECTURES); `auto` picks per objective. */
export const ARCHITECTURES: Record<Modality, readonly string[]> = {
  text: ["transformer"],
  image: ["vit", "resnet"],
  timeseries: ["patch_transformer"],
};
/** Hyperparameters that mean something for one modality only (the rest apply to all). */
const MODALITY_FIELDS: Record<string, readonly Modality[]> = {
  simcse_temperature: ["text"],
  mlm_fraction: ["text"],
  postprocess: ["text"],
  vocab_size: ["text"],
  max_tokens: ["text"],
  image_size: ["image"],
  channels: ["image"],
  patch_size: ["image"],
  crop_min_scale: ["image"],
  simclr_temperature: ["image", "timeseries"],
  series_length: ["timeseries"],
  series_patch: ["timeseries"],
  predict_patches: ["timeseries"],
  normalization: ["timeseries"],
};
export const PRESETS = ["tiny", "mini", "small", "base"] as const;
/** The trainer's MAX_SERIES_LENGTH (config.py). */
export const MAX_SERIES_LENGTH = 4096;

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
    postprocess: z
      .enum(["none", "center", "whiten"])
      .optional()
      .openapi({
        description:
          "text: fitted on the corpus and baked into the exported graph so cosine similarity works — center " +
          "(default) subtracts the mean embedding, whiten also decorrelates (BERT-whitening), none leaves it.",
      }),
    checkpoint_every: z.number().int().min(0).max(10_000_000).optional(),
    eval_every: z.number().int().min(0).max(10_000_000).optional(),
    architecture: z.enum(["auto", "transformer", "vit", "resnet", "patch_transformer"]).optional().openapi({
      description: "auto: text transformer; image mae → vit, simclr → resnet; timeseries patch_transformer.",
    }),
    // Images (decision 0005).
    simclr_temperature: z
      .number()
      .gt(0)
      .max(10)
      .optional()
      .openapi({ description: "NT-Xent (image simclr, series contrastive)." }),
    image_size: z
      .number()
      .int()
      .min(8)
      .max(512)
      .optional()
      .openapi({ description: "Side the images are resized to (default 32)." }),
    channels: z
      .union([z.literal(0), z.literal(1), z.literal(3)])
      .optional()
      .openapi({ description: "0 = from the data (1 for all-grey sets, else 3)." }),
    patch_size: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .openapi({ description: "ViT patch side in pixels; divides image_size." }),
    crop_min_scale: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .openapi({ description: "SimCLR random resized crop: smallest area fraction." }),
    // Time series.
    series_length: z
      .number()
      .int()
      .min(0)
      .max(MAX_SERIES_LENGTH)
      .refine((n) => n !== 1, "use 0 (the longest series in the data) or at least 2")
      .optional()
      .openapi({ description: `0 = the longest series in the data; at most ${MAX_SERIES_LENGTH}.` }),
    series_patch: z.number().int().min(1).max(512).optional().openapi({ description: "Points per patch (default 8)." }),
    predict_patches: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .openapi({ description: "temporal: patches predicted after the context." }),
    normalization: z.enum(["per_series", "dataset", "none"]).optional(),
  })
  .strict()
  .openapi("Hyperparameters", { example: { steps: 300, batch_size: 32, lr: 0.0005, checkpoint_every: 100 } });
export type Hyperparameters = z.infer<typeof Hyperparameters>;

/**
 * The checks that span fields or depend on the dataset's modality, which the trainer would
 * otherwise fail on after claiming the job. Throws a 422 naming the field and the fix.
 */
export function checkJobConfig(modality: Modality, objective: string, h: Hyperparameters) {
  const fail = (field: string, detail: string, message: string) => {
    throw unprocessable(`${field}: ${detail}`, [{ path: field, message }]);
  };
  for (const [field, modalities] of Object.entries(MODALITY_FIELDS)) {
    if (field in h && !modalities.includes(modality)) {
      fail(
        `hyperparameters.${field}`,
        `applies to ${modalities.join(" and ")} jobs; this is a ${modality} job. Remove it.`,
        `not a ${modality} hyperparameter`,
      );
    }
  }
  const arch = h.architecture;
  if (arch && arch !== "auto" && !ARCHITECTURES[modality].includes(arch)) {
    const valid = ["auto", ...ARCHITECTURES[modality]].join(", ");
    fail(
      "hyperparameters.architecture",
      `\`${arch}\` is not a ${modality} encoder; use one of ${valid}.`,
      `use one of ${valid}`,
    );
  }
  if (objective === "mae" && arch === "resnet") {
    fail(
      "hyperparameters.architecture",
      "resnet cannot train mae (MAE drops patches, which needs a ViT); use vit, or objective simclr.",
      "mae needs vit",
    );
  }
  const size = h.image_size ?? 32;
  const patch = h.patch_size ?? 4;
  if (modality === "image" && size % patch !== 0) {
    fail(
      "hyperparameters.patch_size",
      `${patch} does not divide image_size ${size}; pick a divisor (e.g. 4 for 32).`,
      "must divide image_size",
    );
  }
}

/** Text objectives that can continue a registered encoder (NSP needs a head the import lacks). */
export const INIT_FROM_OBJECTIVES: Record<Modality, readonly string[] | null> = {
  text: ["mlm", "simcse", "mlm+simcse"],
  image: null,
  timeseries: null,
};

/**
 * `init_from` resolved to one version of this tenant (an alias is read now, so a retried attempt
 * loads the same weights), or a 422 naming `init_from` and the fix.
 */
export async function resolveInitFrom(db: Db, tenantId: string, ref: string, modality: Modality, objective: string) {
  const fail = (detail: string, message: string): never => {
    throw unprocessable(`init_from: ${detail}`, [{ path: "init_from", message }]);
  };
  const found = await resolveVersion(db, tenantId, ref).catch((e) => {
    if (e instanceof ApiError && e.status === 404)
      return fail(e.message, "does not resolve to a version of this tenant");
    throw e;
  });
  const { model, version } = found;
  const name = `${model.name}@${version.version}`;
  if (version.modality !== modality) {
    fail(
      `${name} is ${version.modality === "image" ? "an" : "a"} ${version.modality} encoder; the dataset holds ${modality}.`,
      `must be a ${modality} encoder`,
    );
  }
  const weights = (version.manifest as { weights?: unknown }).weights;
  if (typeof weights !== "string" || !(weights in version.files)) {
    fail(
      `${name} has no PyTorch weights (manifest \`weights\`), so training cannot continue from it; import it with \`python -m selfsup_trainer import\` or train it with this platform.`,
      "has no weights file",
    );
  }
  const allowed = INIT_FROM_OBJECTIVES[modality];
  if (allowed && !allowed.includes(objective)) {
    throw unprocessable(
      `objective: \`${objective}\` cannot continue ${name}; with init_from use ${allowed.join(", ")}.`,
      [
        { path: "objective", message: `with init_from use one of ${allowed.join(", ")}` },
        { path: "init_from", message: `continues with ${allowed.join(", ")} only` },
      ],
    );
  }
  return { id: version.id, ref: name };
}

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
