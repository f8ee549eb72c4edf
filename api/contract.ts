// The trainer contract: every fact the API and the Python trainer must agree on, written once.
// `npm run contract:generate` renders it to gpu-trainer/selfsup_trainer/contract.json, which the
// trainer loads and tests against; `npm run contract:check` fails when that file is
// stale. Keep this module free of Worker-only imports: the generator runs it under Node.
import { z } from "@hono/zod-openapi";
import { JOB_KINDS, type JobKind, MODALITIES, type Modality } from "../db/schema";

export { JOB_KINDS, type JobKind, MODALITIES, type Modality };

/** A run's random seed (the trainer's torch/numpy seeds take 32-bit values). */
const Seed = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);

export const PRESETS = ["tiny", "mini", "small", "base"] as const;

export const OBJECTIVES: Record<Modality, readonly string[]> = {
  text: ["mlm", "simcse", "mlm+simcse", "mlm+nsp"],
  image: ["simclr", "mae"],
  timeseries: ["masked", "temporal", "contrastive"],
};

/**
 * Encoder families a job may name per modality (`hyperparameters.architecture`, besides `auto`,
 * which picks per objective). The trainer's `bert` is reachable only through `init_from`.
 */
export const ARCHITECTURES: Record<Modality, readonly string[]> = {
  text: ["transformer"],
  image: ["vit", "resnet"],
  timeseries: ["patch_transformer"],
};

/** Hyperparameters that mean something for some modalities only (the rest apply to all). */
export const MODALITY_FIELDS: Record<string, readonly Modality[]> = {
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

/** Text objectives that can continue a registered encoder (NSP needs a head the import lacks). */
export const INIT_FROM_OBJECTIVES: Record<Modality, readonly string[] | null> = {
  text: ["mlm", "simcse", "mlm+simcse"],
  image: null,
  timeseries: null,
};

/** Longest series a job may ask for (`series_length`); the trainer pads or crops to it. */
export const MAX_SERIES_LENGTH = 4096;

/**
 * Smallest held-out slice per modality: images need 12 for the export parity gates (batches of 1,
 * 3 and 8), series 2. A set needs as many again to train, so the API refuses smaller sets at
 * creation rather than letting the trainer fail after claiming the job.
 */
export const MIN_HELDOUT: Record<Modality, number | null> = { text: null, image: 12, timeseries: 2 };

const architectureNames = [...new Set(Object.values(ARCHITECTURES).flat())];

/**
 * Hyperparameters a job may set, with their ranges. The names are the trainer's TrainConfig fields,
 * so the trainer takes the stored config as is; unknown keys are refused here rather than there.
 * Field notes use `.meta` (not `.openapi`) so they reach both /openapi.json and `z.toJSONSchema`.
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
    seed: Seed.optional(),
    vocab_size: z.number().int().min(100).max(250_000).optional(),
    max_tokens: z.number().int().min(8).max(8192).optional(),
    dropout: z.number().min(0).lt(1).optional(),
    pooling: z.enum(["mean", "cls"]).optional(),
    postprocess: z
      .enum(["none", "center", "whiten"])
      .optional()
      .meta({
        description:
          "text: fitted on the corpus and baked into the exported graph so cosine similarity works — center " +
          "(default) subtracts the mean embedding, whiten also decorrelates (BERT-whitening), none leaves it.",
      }),
    checkpoint_every: z.number().int().min(0).max(10_000_000).optional(),
    eval_every: z.number().int().min(0).max(10_000_000).optional(),
    architecture: z
      .enum(["auto", ...architectureNames] as [string, ...string[]])
      .optional()
      .meta({ description: "auto: text transformer; image mae → vit, simclr → resnet; timeseries patch_transformer." }),
    // Images (decision 0005).
    simclr_temperature: z
      .number()
      .gt(0)
      .max(10)
      .optional()
      .meta({ description: "NT-Xent (image simclr, series contrastive)." }),
    image_size: z
      .number()
      .int()
      .min(8)
      .max(512)
      .optional()
      .meta({ description: "Side the images are resized to (default 32)." }),
    channels: z
      .union([z.literal(0), z.literal(1), z.literal(3)])
      .optional()
      .meta({ description: "0 = from the data (1 for all-grey sets, else 3)." }),
    patch_size: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .meta({ description: "ViT patch side in pixels; divides image_size." }),
    crop_min_scale: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .meta({ description: "SimCLR random resized crop: smallest area fraction." }),
    // Time series. "Not 1" lives in the schema too (`not`), so the trainer derives it from the JSON.
    series_length: z
      .number()
      .int()
      .min(0)
      .max(MAX_SERIES_LENGTH)
      .refine((n) => n !== 1, "use 0 (the longest series in the data) or at least 2")
      .optional()
      .meta({
        description: `0 = the longest series in the data, else at least 2; at most ${MAX_SERIES_LENGTH}.`,
        not: { const: 1 },
      }),
    series_patch: z.number().int().min(1).max(512).optional().meta({ description: "Points per patch (default 8)." }),
    predict_patches: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .meta({ description: "temporal: patches predicted after the context." }),
    normalization: z.enum(["per_series", "dataset", "none"]).optional(),
  })
  .strict()
  .openapi("Hyperparameters", { example: { steps: 300, batch_size: 32, lr: 0.0005, checkpoint_every: 100 } });
export type Hyperparameters = z.infer<typeof Hyperparameters>;

/** The objective a fine-tune job stores and its manifest must name. */
export const FINETUNE_OBJECTIVE = "classify";

/**
 * Hyperparameters a fine-tune job may set (`POST /v1/finetuning/jobs`), with their ranges; the
 * `default` in each field's schema is what the trainer applies when the job leaves it out. The
 * architecture, tokenizer and preprocessing are the base version's, so none of those are here.
 */
export const FinetuneHyperparameters = z
  .object({
    epochs: z.number().gt(0).max(100).optional().meta({ default: 3 }),
    steps: z.number().int().min(1).max(10_000_000).optional().meta({ description: "Overrides epochs." }),
    batch_size: z.number().int().min(1).max(1024).optional().meta({ default: 32 }),
    lr: z.number().gt(0).max(1).optional().meta({ default: 5e-5, description: "The encoder's learning rate." }),
    head_lr: z.number().gt(0).max(1).optional().meta({ default: 1e-3, description: "The head's learning rate." }),
    layer_decay: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .meta({ default: 0.9, description: "Layer-wise lr decay per block from the top; 1 = off." }),
    freeze_layers: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .optional()
      .meta({ default: 0, description: "Embeddings and the first N blocks stay frozen." }),
    label_smoothing: z.number().min(0).lt(1).optional().meta({ default: 0.1 }),
    head_init: z.enum(["probe", "zero"]).optional().meta({
      default: "probe",
      description:
        "probe: the head starts as a logistic regression on the base's frozen embeddings (LP-FT; best for strong text and series encoders in bench/transfer.py); zero: from zero (better for MAE-style encoders whose frozen features probe poorly).",
    }),
    weight_decay: z.number().min(0).max(1).optional().meta({ default: 0.01 }),
    warmup_ratio: z.number().min(0).lt(1).optional().meta({ default: 0.1 }),
    dropout: z.number().min(0).lt(1).optional().meta({ default: 0.1 }),
    early_stopping_patience: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .optional()
      .meta({ default: 2, description: "Evaluations without improvement before stopping; 0 = off." }),
    eval_every: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .optional()
      .meta({ default: 0, description: "Steps between evaluations; 0 = once per epoch." }),
    validation_split: z
      .number()
      .gt(0)
      .max(0.5)
      .optional()
      .meta({ default: 0.1, description: "Held out of the dataset when the job has no eval_dataset." }),
    checkpoint_every: z.number().int().min(0).max(10_000_000).optional(),
    seed: Seed.optional(),
    max_tokens: z
      .number()
      .int()
      .min(8)
      .max(8192)
      .optional()
      .meta({ description: "text: cut longer inputs (at most the base's max_tokens)." }),
  })
  .strict()
  .openapi("FinetuneHyperparameters", { example: { epochs: 3, lr: 5e-5, layer_decay: 0.9, freeze_layers: 0 } });
export type FinetuneHyperparameters = z.infer<typeof FinetuneHyperparameters>;

/** Fine-tune hyperparameters that mean something for some modalities only. */
export const FINETUNE_MODALITY_FIELDS: Record<string, readonly Modality[]> = { max_tokens: ["text"] };

/** The contract as plain JSON (what contract.json holds), key order as written to the file. */
export function contractJson() {
  return {
    $comment: "Generated by `npm run contract:generate` from api/contract.ts; do not edit.",
    modalities: MODALITIES,
    presets: PRESETS,
    objectives: OBJECTIVES,
    architectures: ARCHITECTURES,
    init_from_objectives: INIT_FROM_OBJECTIVES,
    modality_fields: MODALITY_FIELDS,
    max_series_length: MAX_SERIES_LENGTH,
    min_heldout: MIN_HELDOUT,
    hyperparameters: z.toJSONSchema(Hyperparameters),
    job_kinds: JOB_KINDS,
    finetune_objective: FINETUNE_OBJECTIVE,
    finetune_modality_fields: FINETUNE_MODALITY_FIELDS,
    finetune_hyperparameters: z.toJSONSchema(FinetuneHyperparameters),
  };
}
