import { z } from "@hono/zod-openapi";
import type { evaluations } from "../../../db/schema";
import { iso, Timestamp } from "../../lib/schemas";
import type { EvaluationState } from "../../services/evaluations";
import { BASELINE_KINDS } from "../../services/probe/baseline";
import type { EvaluationResults, ResultRow, TableRow } from "../../services/probe/evaluate";
import { PROBE_KINDS } from "../../services/probe/fit";

const Cell = z.object({ accuracy: z.number(), macro_f1: z.number() });

export const EVALUATION_KINDS = [...PROBE_KINDS, "finetuned"] as const;

export const EvaluationRowSchema = z.object({
  name: z.string().openapi({
    example: "demo@3",
    description: "A model version, or the baseline's kind (`tfidf`, `raw_pixels`, `raw_values`).",
  }),
  features: z.enum(["embeddings", ...BASELINE_KINDS]),
  linear: Cell.extend({ C: z.number() })
    .optional()
    .openapi({ description: "When `kinds` holds linear (the default)." }),
  knn: Cell.extend({ k: z.number().int() })
    .optional()
    .openapi({ description: "When `kinds` holds knn (the default)." }),
  mlp: Cell.extend({ best_epoch: z.number().int() }).optional().openapi({ description: "When `kinds` holds mlp." }),
  finetuned: Cell.optional().openapi({
    description: "A fine-tuned version (one with a classification head): its head.",
  }),
  delta_vs_baseline: z
    .object({
      linear: z.number().optional(),
      knn: z.number().optional(),
      mlp: z.number().optional(),
      finetuned: z.number().optional(),
    })
    .nullable()
    .openapi({
      description:
        "Accuracy minus the baseline's (positive: pretraining helped): linear and knn against the baseline's same probe, " +
        "mlp and finetuned against its linear probe.",
    }),
  timings: z.object({ embed_ms: z.number(), fit_ms: z.number() }),
});

export const ConfusionSchema = z.object({
  labels: z.array(z.string()),
  matrix: z.array(z.array(z.number().int())).openapi({ description: "Rows: true label; columns: predicted." }),
});

export const EvaluationResultRowSchema = z
  .object({
    model: z.string().openapi({ example: "demo@3", description: "A model version, or the baseline's kind." }),
    features: z.enum(["embeddings", "head", ...BASELINE_KINDS]).openapi({
      description:
        "`embeddings`: a probe on the version's frozen embeddings; `head`: its fine-tuned head; else the baseline.",
    }),
    kind: z.enum(EVALUATION_KINDS),
    accuracy: z.number(),
    macro_f1: z.number(),
    confusion: ConfusionSchema.nullable().openapi({
      description: "On the test split; null on evaluations stored before rows carried it.",
    }),
    delta_vs_baseline: z.number().nullable().openapi({
      description:
        "Accuracy minus the baseline's same probe (linear, knn) or its linear probe (mlp, finetuned); null on baseline rows.",
    }),
    hyperparameters: z
      .record(z.string(), z.unknown())
      .openapi({ description: "linear: C; knn: k; mlp: hidden, epochs run, chosen epoch, its validation loss." }),
  })
  .openapi("EvaluationResultRow");

/** Why background work failed, problem-like: what to change before sending it again. */
export const WorkErrorSchema = z
  .object({
    title: z.string().openapi({ example: "The work's input was refused" }),
    detail: z.string(),
    status: z.number().int().optional().openapi({ description: "The status a request would have answered." }),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("WorkError");

export const EvaluationProgressSchema = z
  .object({
    phase: z.enum(["embedding", "fitting", "done"]),
    model: z.string().nullable().openapi({ description: "The model being embedded or fitted; null when done." }),
    items_done: z.number().int().openapi({ description: "Inputs embedded so far, over every model (and head)." }),
    items_total: z.number().int(),
    models_fitted: z.number().int(),
    models_total: z.number().int(),
  })
  .openapi("EvaluationProgress");

export const EvaluationSchema = z
  .object({
    id: z.string().openapi({ example: "evl_mi1x2y3zAbCdEfGhIjKl" }),
    object: z.literal("evaluation"),
    status: z.enum(["running", "succeeded", "failed"]).openapi({
      description:
        "`running` while the work queue embeds and fits (poll GET /v1/evaluations/{id}); `rows`, `table` and " +
        "`baseline` are filled once `succeeded`; `failed` says why in `error`.",
    }),
    progress: EvaluationProgressSchema.nullable().openapi({ description: "Null on evaluations stored before it." }),
    error: WorkErrorSchema.nullable(),
    models: z.array(z.string()).openapi({ example: ["demo@2", "demo@3"] }),
    dataset: z.string().nullable(),
    labels: z.array(z.string()),
    n_train: z.number().int(),
    n_test: z.number().int(),
    split: z.record(z.string(), z.unknown()).nullable(),
    kinds: z.array(z.enum(PROBE_KINDS)).openapi({ description: "The probe kinds fitted on each model's embeddings." }),
    rows: z.array(EvaluationResultRowSchema).openapi({
      description:
        "One row per (model, kind) on the same split: each version's probes, a fine-tuned version's head, then the " +
        "baseline's linear and kNN probes.",
    }),
    table: z.array(EvaluationRowSchema).openapi({
      description: "The same results as one row per model version, then the raw-feature baseline.",
    }),
    baseline: z
      .object({
        kind: z.enum(BASELINE_KINDS),
        features: z.number().int().openapi({ description: "Feature dimensions of the baseline." }),
      })
      .nullable()
      .openapi({
        description:
          "The raw-feature floor (the table's last row): `tfidf` for text; `raw_pixels` for images (the first model's " +
          "preprocessed pixels, average-pooled to at most 1024 values); `raw_values` for series (normalized per series, " +
          "resampled to 128 points per channel). Image and series baselines use the same standardized logistic regression " +
          "and kNN as the embeddings.",
      }),
    createdAt: Timestamp,
    completedAt: Timestamp.nullable(),
  })
  .openapi("Evaluation");

function progressOf(state: EvaluationState | null): z.infer<typeof EvaluationProgressSchema> | null {
  if (!state?.passes) return null;
  const fitted = state.models.filter((m) => m.results !== null).length;
  const pass = state.passes[state.pass];
  const model =
    state.phase === "embedding" && pass
      ? (state.models[pass.model]?.name ?? null)
      : state.phase === "fitting"
        ? (state.models[fitted]?.name ?? "baseline")
        : null;
  return {
    phase: state.phase,
    model,
    items_done: state.items_done,
    items_total: state.items_total,
    models_fitted: fitted,
    models_total: state.models.length,
  };
}

/** Rows of an evaluation stored before `rows` existed: its table's linear and kNN cells, no confusion. */
function rowsOfTable(table: TableRow[]): ResultRow[] {
  return table.flatMap((t) =>
    (["linear", "knn"] as const).flatMap((kind) => {
      const cell = t[kind];
      if (!cell) return [];
      const { accuracy, macro_f1, ...hyperparameters } = cell;
      return [
        {
          model: t.name,
          features: t.features,
          kind,
          accuracy,
          macro_f1,
          confusion: null,
          delta_vs_baseline: t.delta_vs_baseline?.[kind] ?? null,
          hyperparameters,
        },
      ];
    }),
  );
}

export function evaluationView(row: typeof evaluations.$inferSelect): z.infer<typeof EvaluationSchema> {
  // Stored results predate fields added since (`kinds` and `rows` with issue 18): each is optional here.
  const r = (row.results ?? {}) as unknown as Partial<EvaluationResults>;
  const table = r.table ?? [];
  return {
    id: row.id,
    object: "evaluation",
    status: row.status,
    progress: progressOf(row.state as unknown as EvaluationState | null),
    error: (row.error as z.infer<typeof WorkErrorSchema> | null) ?? null,
    models: row.modelRefs,
    dataset: row.datasetId,
    labels: r.labels ?? [],
    n_train: r.n_train ?? 0,
    n_test: r.n_test ?? 0,
    split: r.split ?? null,
    kinds: r.kinds ?? ["linear", "knn"],
    rows: r.rows ?? rowsOfTable(table),
    table,
    baseline: r.baseline ?? null,
    createdAt: iso(row.createdAt) as string,
    completedAt: iso(row.completedAt),
  };
}
