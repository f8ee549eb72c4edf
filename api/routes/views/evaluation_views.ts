import { z } from "@hono/zod-openapi";
import type { evaluations } from "../../../db/schema";
import { iso, Timestamp } from "../../lib/schemas";

const Cell = z.object({ accuracy: z.number(), macro_f1: z.number() });

export const BASELINE_KINDS = ["tfidf", "raw_pixels", "raw_values"] as const;
export type BaselineKind = (typeof BASELINE_KINDS)[number];

export const EvaluationRowSchema = z.object({
  name: z.string().openapi({
    example: "demo@3",
    description: "A model version, or the baseline's kind (`tfidf`, `raw_pixels`, `raw_values`).",
  }),
  features: z.enum(["embeddings", ...BASELINE_KINDS]),
  linear: Cell.extend({ C: z.number() }),
  knn: Cell.extend({ k: z.number().int() }),
  delta_vs_baseline: z
    .object({ linear: z.number(), knn: z.number() })
    .nullable()
    .openapi({ description: "Accuracy minus the baseline's (positive: pretraining helped)." }),
  timings: z.object({ embed_ms: z.number(), fit_ms: z.number() }),
});

export const EvaluationSchema = z
  .object({
    id: z.string().openapi({ example: "evl_mi1x2y3zAbCdEfGhIjKl" }),
    object: z.literal("evaluation"),
    models: z.array(z.string()).openapi({ example: ["demo@2", "demo@3"] }),
    dataset: z.string().nullable(),
    labels: z.array(z.string()),
    n_train: z.number().int(),
    n_test: z.number().int(),
    split: z.record(z.string(), z.unknown()).nullable(),
    table: z.array(EvaluationRowSchema).openapi({
      description: "One row per model version, then the raw-feature baseline, on the same split.",
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
  })
  .openapi("Evaluation");

export type EvaluationResults = Omit<
  z.infer<typeof EvaluationSchema>,
  "id" | "object" | "models" | "dataset" | "createdAt"
>;

export function evaluationView(row: typeof evaluations.$inferSelect): z.infer<typeof EvaluationSchema> {
  const r = (row.results ?? {}) as unknown as EvaluationResults;
  return {
    id: row.id,
    object: "evaluation",
    models: row.modelRefs,
    dataset: row.datasetId,
    labels: r.labels ?? [],
    n_train: r.n_train ?? 0,
    n_test: r.n_test ?? 0,
    split: r.split ?? null,
    table: r.table ?? [],
    baseline: r.baseline ?? null,
    createdAt: iso(row.createdAt) as string,
  };
}
