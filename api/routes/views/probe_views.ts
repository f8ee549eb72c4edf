import { z } from "@hono/zod-openapi";
import { iso, Timestamp } from "../../lib/schemas";
import { DEFAULT_FOLDS, DEFAULT_SPLIT, MAX_PROBE_EXAMPLES, PROBE_KINDS } from "../../services/probe/fit";
import { DEFAULT_K, DEFAULT_TEMPERATURE } from "../../services/probe/knn";
import { DEFAULT_C_GRID, DEFAULT_MAX_ITER, DEFAULT_TOL } from "../../services/probe/logreg";
import { MLP_DEFAULTS } from "../../services/probe/mlp";
import type { ProbeFitState, StoredProbe } from "../../services/probe_runs";
import type { ProbeRow } from "../../services/probes";
import { formatRef } from "../../services/refs";
import { WorkErrorSchema } from "./evaluation_views";

/** One probe input: text, an image (base64 or data URL), or a series (number[] or number[][] channels × time). */
export const ProbeInputSchema = z
  .union(
    [
      z.string().min(1, "must not be empty; send at least one character"),
      z.array(z.number()).min(1, "a series needs at least one point"),
      z.array(z.array(z.number()).min(1, "a channel needs at least one point")).min(1, "send at least one channel"),
    ],
    {
      error:
        "must be the model's input: text (a string), an image (a base64 PNG/JPEG string or data URL), or a series (number[] or number[][])",
    },
  )
  .openapi({
    description:
      "In the model's modality: text models take a string; image models a base64 PNG/JPEG or a `data:image/…;base64,` URL; " +
      "time-series models `number[]` (1 channel) or `number[][]` (channels × time).",
    example: "A computer lets you make more mistakes faster than any invention in human history.",
  });

export const ExampleSchema = z.object({
  input: ProbeInputSchema,
  label: z.union([z.string().min(1), z.number()], {
    error: 'every example needs a "label" (a non-empty string or a number)',
  }),
});

export const LabeledSetSchema = z
  .union(
    [
      z.array(ExampleSchema).min(1, "send at least one example"),
      z.object({ dataset: z.string().openapi({ example: "ds_mi1x2y3zAbCdEfGhIjKl" }) }).strict(),
    ],
    { error: 'send an array of {input, label} examples or {"dataset": "<id of a probe dataset>"}' },
  )
  .openapi({
    description:
      `Labeled inputs in the model's modality: inline \`[{input, label}]\`, or \`{dataset}\`: a ready \`purpose: "probe"\` set ` +
      'of the same modality (text: jsonl of `{"text", "label"}` lines; image: zip/tar of class folders, or IDX with labels; ' +
      `time series: labeled jsonl/csv). Train + test: at most ${MAX_PROBE_EXAMPLES} examples.`,
  });

/** What /predict takes: the /v1/embeddings input forms of the probe's model. */
export const PredictInputSchema = z
  .union(
    [
      // An empty text is refused by the handler (its own message); spec-only bound.
      z.string().openapi({ minLength: 1 }),
      z.array(z.string()).min(1, "send at least one input"),
      z.array(z.number()).min(1),
      z.array(z.array(z.number())).min(1),
      z.array(z.array(z.array(z.number()))).min(1),
    ],
    {
      error:
        "must be the model's input forms: text (string or strings), images (base64 strings), or series (number arrays)",
    },
  )
  .openapi({
    description:
      "As /v1/embeddings takes for the probe's model: text models a string or strings; image models base64 PNG/JPEG strings " +
      "or data URLs; 1-channel series models `number[]` (one) or `number[][]` (several); C-channel models `number[][]` " +
      "(one, C channel arrays) or `number[][][]`.",
    example: ["There is no such thing as a free lunch."],
  });

export const SplitSchema = z
  .object({
    split: z.number().gt(0).lt(1).openapi({ example: DEFAULT_SPLIT }),
    seed: z.number().int().min(0).default(0),
  })
  .strict()
  .openapi({ description: "Hold out this fraction of train (stratified by label, reproducible from seed)." });

export const ProbeOptionsSchema = z
  .object({
    folds: z
      .number()
      .int()
      .min(2)
      .max(10)
      .optional()
      .openapi({
        description: `linear: k of the k-fold CV that picks C (default ${DEFAULT_FOLDS}); every class needs that many train examples.`,
      }),
    c_grid: z
      .array(z.number().positive())
      .min(1)
      .max(10)
      .optional()
      .openapi({
        example: [...DEFAULT_C_GRID],
        description:
          "linear: inverse L2 strengths to try (scikit-learn's C: the penalty is ||W||² / (2·C·n_train) on the mean log-loss).",
      }),
    tol: z
      .number()
      .positive()
      .max(1e-2)
      .optional()
      .openapi({ description: `linear: L-BFGS stops when max |gradient| <= tol (default ${DEFAULT_TOL}).` }),
    max_iter: z
      .number()
      .int()
      .min(1)
      .max(5000)
      .optional()
      .openapi({ description: `default ${DEFAULT_MAX_ITER}` }),
    k: z
      .number()
      .int()
      .min(1)
      .max(200)
      .optional()
      .openapi({ description: `knn: neighbours (default ${DEFAULT_K}).` }),
    temperature: z
      .number()
      .positive()
      .optional()
      .openapi({ description: `knn: vote weight exp(sim / T) (default ${DEFAULT_TEMPERATURE}).` }),
    hidden: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .optional()
      .openapi({ description: `mlp: hidden ReLU units (default ${MLP_DEFAULTS.hidden}).` }),
    max_epochs: z
      .number()
      .int()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: `mlp: most passes over train (default ${MLP_DEFAULTS.max_epochs}).` }),
    patience: z
      .number()
      .int()
      .min(1)
      .max(50)
      .optional()
      .openapi({
        description: `mlp: stop after this many epochs without a lower validation loss (default ${MLP_DEFAULTS.patience}).`,
      }),
    lr: z
      .number()
      .positive()
      .max(1)
      .optional()
      .openapi({ description: `mlp: AdamW learning rate (default ${MLP_DEFAULTS.lr}).` }),
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .optional()
      .openapi({ description: `mlp: examples per step (default ${MLP_DEFAULTS.batch_size}).` }),
    weight_decay: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .openapi({ description: `mlp: AdamW decoupled weight decay (default ${MLP_DEFAULTS.weight_decay}).` }),
    validation_split: z
      .number()
      .min(0)
      .max(0.5)
      .optional()
      .openapi({
        description: `mlp: fraction of train (stratified) held out to pick the epoch; 0 trains max_epochs with no early stopping (default ${MLP_DEFAULTS.validation_split}).`,
      }),
    seed: z.number().int().min(0).optional().openapi({
      description: "Seeds the CV folds, and the MLP's init, validation split and batch order (default 0).",
    }),
  })
  .strict();

const ClassMetricsSchema = z.object({
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: z.number().int(),
});

export const MetricsSchema = z
  .object({
    accuracy: z.number().openapi({ example: 0.68 }),
    macro_f1: z.number().openapi({ example: 0.67 }),
    per_class: z.record(z.string(), ClassMetricsSchema).openapi({
      example: { food: { precision: 0.7, recall: 0.78, f1: 0.74, support: 18 } },
    }),
    confusion: z.object({
      labels: z.array(z.string()),
      matrix: z.array(z.array(z.number().int())).openapi({ description: "Rows: true label; columns: predicted." }),
    }),
  })
  .openapi("ProbeMetrics");

export const ProbeSchema = z
  .object({
    id: z.string().openapi({ example: "prb_mi1x2y3zAbCdEfGhIjKl" }),
    object: z.literal("probe"),
    model: z.string().openapi({ example: "demo@3" }),
    kind: z.enum(PROBE_KINDS),
    status: z.enum(["fitting", "ready", "failed"]).openapi({
      description:
        "`ready` once weights are stored (inline probes at once); a probe over a dataset is `fitting` while the " +
        "work queue embeds and fits (poll GET /v1/probes/{id}), `failed` with `error`.",
    }),
    progress: z
      .object({
        phase: z.enum(["embedding", "fitting", "done"]),
        items_done: z.number().int().openapi({ description: "Inputs embedded so far." }),
        items_total: z.number().int(),
      })
      .nullable()
      .openapi({ description: "Null for probes fitted inside their request." }),
    error: WorkErrorSchema.nullable(),
    labels: z.array(z.string()).openapi({ example: ["computers", "food", "law", "love"] }),
    metrics: MetricsSchema.nullable().openapi({ description: "Null until `ready`." }),
    n_train: z.number().int(),
    n_test: z.number().int(),
    hyperparameters: z.record(z.string(), z.unknown()).openapi({
      example: { C: 0.01, c_grid: [0.001, 0.01, 0.1, 1, 10], cv_accuracy: [0.49, 0.57, 0.56, 0.56, 0.54], folds: 5 },
    }),
    timings: z.object({ embed_ms: z.number(), fit_ms: z.number() }),
    embeddings: z
      .object({ cached: z.number().int(), embedded: z.number().int() })
      .openapi({ description: "Distinct inputs served from the embedding cache vs. run through the encoder." }),
    train_dataset: z.string().nullable(),
    test_dataset: z.string().nullable(),
    createdAt: Timestamp,
  })
  .openapi("Probe");

export function probeView(row: { probe: ProbeRow; modelName: string; version: number }): z.infer<typeof ProbeSchema> {
  const p = row.probe;
  const o = (p.options ?? {}) as unknown as StoredProbe;
  return {
    id: p.id,
    object: "probe",
    model: formatRef(row.modelName, row.version),
    kind: p.kind,
    status: p.status,
    progress: progressOf(p.state as unknown as ProbeFitState | null),
    error: (p.error as z.infer<typeof WorkErrorSchema> | null) ?? null,
    labels: o.labels ?? [],
    metrics: (p.metrics as z.infer<typeof MetricsSchema> | null) ?? null,
    n_train: p.nTrain ?? 0,
    n_test: p.nTest ?? 0,
    hyperparameters: o.hyperparameters ?? {},
    timings: o.timings ?? { embed_ms: 0, fit_ms: 0 },
    embeddings: o.embeddings ?? { cached: 0, embedded: 0 },
    train_dataset: p.trainDatasetId,
    test_dataset: p.testDatasetId,
    createdAt: iso(p.createdAt) as string,
  };
}

function progressOf(state: ProbeFitState | null) {
  if (!state?.phase) return null;
  return { phase: state.phase, items_done: state.items_done, items_total: state.items_total };
}
