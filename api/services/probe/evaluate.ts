// An evaluation's comparison on one split: each model's probes of the requested kinds (and a
// fine-tuned version's own head), next to the raw-feature baseline, as one row per (model, kind)
// and the per-model summary table. Pure: vectors and probabilities in, plain rows out.
import type { BaselineKind, BaselineResult } from "./baseline";
import { fitProbeAsync, type ProbeKind, type ProbeOptions } from "./fit";
import type { Matrix } from "./matrix";
import { classificationMetrics, type ProbeMetrics } from "./metrics";

/** What an evaluation row scores: a probe kind on frozen features, or a fine-tuned version's head. */
export type EvaluationKind = ProbeKind | "finetuned";
export const DEFAULT_EVALUATION_KINDS: ProbeKind[] = ["linear", "knn"];

export type KindResult = {
  kind: EvaluationKind;
  metrics: ProbeMetrics;
  /** The few settings a reader compares rows by (C, k, the MLP's chosen epoch). */
  hyperparameters: Record<string, unknown>;
  fit_ms: number;
};

/** The hyperparameters a row shows, by kind; the probe's full record stays with /v1/probes. */
function summary(kind: ProbeKind, h: Record<string, unknown>): Record<string, unknown> {
  if (kind === "linear") return { C: h.C };
  if (kind === "knn") return { k: h.k };
  return { hidden: h.hidden, epochs: h.epochs, best_epoch: h.best_epoch, best_val_loss: h.best_val_loss };
}

/** Fits each kind on the same train/test vectors, one after another, yielding to the event loop as they go. */
export async function fitKinds(
  kinds: readonly ProbeKind[],
  train: { X: Matrix; labels: string[] },
  test: { X: Matrix; labels: string[] },
  options: ProbeOptions,
): Promise<KindResult[]> {
  const out: KindResult[] = [];
  for (const kind of kinds) {
    const fit = await fitProbeAsync(kind, train, test, options);
    out.push({ kind, metrics: fit.metrics, hyperparameters: summary(kind, fit.hyperparameters), fit_ms: fit.fit_ms });
  }
  return out;
}

/**
 * Scores a fine-tuned head on the test set: `P` holds its probabilities (n × head labels). The
 * prediction is the most probable of the evaluation's labels (a head trained on more labels is
 * scored on this set's); the caller checks that every evaluation label is one of the head's.
 */
export function headResult(
  P: ArrayLike<number>,
  headLabels: readonly string[],
  names: readonly string[],
  testLabels: readonly string[],
  ms: number,
): KindResult {
  const Kh = headLabels.length;
  const at = names.map((n) => headLabels.indexOf(n));
  const index = new Map(names.map((n, i) => [n, i]));
  const yTrue = Int32Array.from(testLabels, (l) => index.get(l) as number);
  const yPred = new Int32Array(testLabels.length);
  for (let i = 0; i < testLabels.length; i++) {
    let best = 0;
    for (let c = 1; c < names.length; c++) {
      if ((P[i * Kh + (at[c] as number)] as number) > (P[i * Kh + (at[best] as number)] as number)) best = c;
    }
    yPred[i] = best;
  }
  return {
    kind: "finetuned",
    metrics: classificationMetrics(yTrue, yPred, names),
    hyperparameters: { head_labels: Kh },
    fit_ms: ms,
  };
}

export type ResultRow = {
  model: string;
  features: "embeddings" | "head" | BaselineKind;
  kind: EvaluationKind;
  accuracy: number;
  macro_f1: number;
  confusion: { labels: string[]; matrix: number[][] } | null;
  delta_vs_baseline: number | null;
  hyperparameters: Record<string, unknown>;
};

/** The baseline's linear and kNN probes as results (its floor for every kind). */
export function baselineResults(b: BaselineResult): KindResult[] {
  return [
    { kind: "linear", metrics: b.linear, hyperparameters: { C: b.linear.C }, fit_ms: b.fit_ms },
    { kind: "knn", metrics: b.knn, hyperparameters: { k: b.knn.k }, fit_ms: 0 },
  ];
}

/**
 * A result's accuracy minus the baseline's: the same kind where the baseline fits it (linear, kNN),
 * else its linear probe (the floor an MLP or a fine-tuned head has to beat).
 */
export function deltaVsBaseline(r: KindResult, b: BaselineResult): number {
  const floor = r.kind === "knn" ? b.knn : b.linear;
  return r.metrics.accuracy - floor.accuracy;
}

export function resultRows(
  model: string,
  features: "embeddings" | BaselineKind,
  results: KindResult[],
  baseline: BaselineResult | null,
): ResultRow[] {
  return results.map((r) => ({
    model,
    features: r.kind === "finetuned" ? "head" : features,
    kind: r.kind,
    accuracy: r.metrics.accuracy,
    macro_f1: r.metrics.macro_f1,
    confusion: r.metrics.confusion,
    delta_vs_baseline: baseline ? deltaVsBaseline(r, baseline) : null,
    hyperparameters: r.hyperparameters,
  }));
}

type Cell = { accuracy: number; macro_f1: number };

/** One model (or the baseline) as a row of the summary table: a cell per kind that ran. */
export type TableRow = {
  name: string;
  features: "embeddings" | BaselineKind;
  linear?: Cell & { C: number };
  knn?: Cell & { k: number };
  mlp?: Cell & { best_epoch: number };
  finetuned?: Cell;
  delta_vs_baseline: Partial<Record<EvaluationKind, number>> | null;
  timings: { embed_ms: number; fit_ms: number };
};

/** What an evaluation stores (its `results` column). */
export type EvaluationResults = {
  labels: string[];
  n_train: number;
  n_test: number;
  split: Record<string, unknown> | null;
  kinds: ProbeKind[];
  rows: ResultRow[];
  table: TableRow[];
  baseline: { kind: BaselineKind; features: number };
};

/** One model's results as a summary-table row (the baseline's: `baseline` null). */
export function tableRow(
  name: string,
  features: TableRow["features"],
  results: KindResult[],
  baseline: BaselineResult | null,
  embed_ms: number,
): TableRow {
  const row: TableRow = {
    name,
    features,
    delta_vs_baseline: baseline ? {} : null,
    timings: { embed_ms, fit_ms: results.reduce((t, r) => t + r.fit_ms, 0) },
  };
  for (const r of results) {
    const cell = { accuracy: r.metrics.accuracy, macro_f1: r.metrics.macro_f1 };
    if (r.kind === "linear") row.linear = { ...cell, C: r.hyperparameters.C as number };
    else if (r.kind === "knn") row.knn = { ...cell, k: r.hyperparameters.k as number };
    else if (r.kind === "mlp") row.mlp = { ...cell, best_epoch: r.hyperparameters.best_epoch as number };
    else row.finetuned = cell;
    if (baseline && row.delta_vs_baseline) row.delta_vs_baseline[r.kind] = deltaVsBaseline(r, baseline);
  }
  return row;
}
