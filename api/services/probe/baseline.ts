// The raw-feature baseline an evaluation shows next to each model. Text: TF-IDF of the same
// train/test split, a linear probe (C by the same k-fold CV, no standardisation: TF-IDF rows are
// already L2-normalised and sparse) and the same weighted kNN. Images and series (decision 0005):
// raw features (pooled preprocessed pixels; normalized, resampled values) through exactly the
// probes the embeddings get — standardized logistic regression and the same kNN.
import { DEFAULT_FOLDS, encodeLabels, fitProbeSteps, type ProbeOptions, toMatrix } from "./fit";
import { DEFAULT_K, DEFAULT_TEMPERATURE, knnProbaSparseSteps } from "./knn";
import { argmaxRows, crossValidateCSteps, DEFAULT_MAX_ITER, DEFAULT_TOL, fitLogRegSteps, predictProba } from "./logreg";
import { stratifiedFolds } from "./matrix";
import { classificationMetrics, type ProbeMetrics } from "./metrics";
import { runSync, type Steps } from "./steps";
import { fitTfidfSteps } from "./tfidf";

/** The raw-feature baseline by modality: text, images, series. */
export const BASELINE_KINDS = ["tfidf", "raw_pixels", "raw_values"] as const;
export type BaselineKind = (typeof BASELINE_KINDS)[number];

/** Sparse TF-IDF wants weaker penalties than standardised embeddings. */
export const TFIDF_C_GRID = [0.1, 1, 10, 100] as const;

type Texts = { texts: string[]; labels: string[] };

export const tfidfBaseline = (train: Texts, test: Texts, opts: ProbeOptions): BaselineResult =>
  runSync(tfidfBaselineSteps(train, test, opts));

export function* tfidfBaselineSteps(train: Texts, test: Texts, opts: ProbeOptions): Steps<BaselineResult> {
  const started = Date.now();
  const { names, y } = encodeLabels(train.labels);
  const index = new Map(names.map((n, i) => [n, i]));
  const yTest = Int32Array.from(test.labels, (l) => index.get(l) as number);
  const K = names.length;
  const tfidf = yield* fitTfidfSteps(train.texts);
  const Xtr = yield* tfidf.transformSteps(train.texts);
  const Xte = yield* tfidf.transformSteps(test.texts);
  const folds = opts.folds ?? DEFAULT_FOLDS;
  const tol = opts.tol ?? DEFAULT_TOL;
  const maxIter = opts.max_iter ?? DEFAULT_MAX_ITER;
  const cv = yield* crossValidateCSteps(Xtr, y, K, stratifiedFolds(y, K, folds, opts.seed ?? 0), folds, TFIDF_C_GRID, {
    tol,
    maxIter,
  });
  const fit = yield* fitLogRegSteps(Xtr, y, K, { C: cv.chosenC, tol, maxIter });
  const linear = classificationMetrics(yTest, argmaxRows(predictProba(fit.model, Xte), K), names);
  const k = Math.min(opts.k ?? DEFAULT_K, Xtr.rows);
  const P = yield* knnProbaSparseSteps(Xtr, y, K, Xte, k, opts.temperature ?? DEFAULT_TEMPERATURE);
  const knn = classificationMetrics(yTest, argmaxRows(P, K), names);
  return {
    linear: { ...linear, C: cv.chosenC },
    knn: { ...knn, k },
    features: Xtr.cols,
    fit_ms: Date.now() - started,
  };
}

export type BaselineResult = {
  linear: ProbeMetrics & { C: number };
  knn: ProbeMetrics & { k: number };
  features: number;
  fit_ms: number;
};

/** The image/series floor: raw feature vectors through `fitProbe`'s linear and kNN probes. */
type Rows = { X: ArrayLike<number>[]; labels: string[] };

export const rawFeatureBaseline = (train: Rows, test: Rows, opts: ProbeOptions): BaselineResult =>
  runSync(rawFeatureBaselineSteps(train, test, opts));

export function* rawFeatureBaselineSteps(train: Rows, test: Rows, opts: ProbeOptions): Steps<BaselineResult> {
  const started = Date.now();
  const tr = { X: toMatrix(train.X), labels: train.labels };
  const te = { X: toMatrix(test.X), labels: test.labels };
  const linear = yield* fitProbeSteps("linear", tr, te, opts);
  const knn = yield* fitProbeSteps("knn", tr, te, opts);
  return {
    linear: { ...linear.metrics, C: linear.hyperparameters.C as number },
    knn: { ...knn.metrics, k: knn.hyperparameters.k as number },
    features: tr.X.cols,
    fit_ms: Date.now() - started,
  };
}
