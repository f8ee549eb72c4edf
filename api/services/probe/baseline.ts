// The raw-feature baseline an evaluation shows next to each model. Text: TF-IDF of the same
// train/test split, a linear probe (C by the same k-fold CV, no standardisation: TF-IDF rows are
// already L2-normalised and sparse) and the same weighted kNN. Images and series (decision 0005):
// raw features (pooled preprocessed pixels; normalized, resampled values) through exactly the
// probes the embeddings get — standardized logistic regression and the same kNN.
import { DEFAULT_FOLDS, encodeLabels, fitProbe, type ProbeOptions, toMatrix } from "./fit";
import { DEFAULT_K, DEFAULT_TEMPERATURE, knnProbaSparse } from "./knn";
import { argmaxRows, crossValidateC, DEFAULT_MAX_ITER, DEFAULT_TOL, fitLogReg, predictProba } from "./logreg";
import { stratifiedFolds } from "./matrix";
import { classificationMetrics, type ProbeMetrics } from "./metrics";
import { fitTfidf } from "./tfidf";

/** The raw-feature baseline by modality: text, images, series. */
export const BASELINE_KINDS = ["tfidf", "raw_pixels", "raw_values"] as const;
export type BaselineKind = (typeof BASELINE_KINDS)[number];

/** Sparse TF-IDF wants weaker penalties than standardised embeddings. */
export const TFIDF_C_GRID = [0.1, 1, 10, 100] as const;

export function tfidfBaseline(
  train: { texts: string[]; labels: string[] },
  test: { texts: string[]; labels: string[] },
  opts: ProbeOptions,
): { linear: ProbeMetrics & { C: number }; knn: ProbeMetrics & { k: number }; features: number; fit_ms: number } {
  const started = Date.now();
  const { names, y } = encodeLabels(train.labels);
  const index = new Map(names.map((n, i) => [n, i]));
  const yTest = Int32Array.from(test.labels, (l) => index.get(l) as number);
  const K = names.length;
  const tfidf = fitTfidf(train.texts);
  const Xtr = tfidf.transform(train.texts);
  const Xte = tfidf.transform(test.texts);
  const folds = opts.folds ?? DEFAULT_FOLDS;
  const tol = opts.tol ?? DEFAULT_TOL;
  const maxIter = opts.max_iter ?? DEFAULT_MAX_ITER;
  const cv = crossValidateC(Xtr, y, K, stratifiedFolds(y, K, folds, opts.seed ?? 0), folds, TFIDF_C_GRID, {
    tol,
    maxIter,
  });
  const fit = fitLogReg(Xtr, y, K, { C: cv.chosenC, tol, maxIter });
  const linear = classificationMetrics(yTest, argmaxRows(predictProba(fit.model, Xte), K), names);
  const k = Math.min(opts.k ?? DEFAULT_K, Xtr.rows);
  const P = knnProbaSparse(Xtr, y, K, Xte, k, opts.temperature ?? DEFAULT_TEMPERATURE);
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
export function rawFeatureBaseline(
  train: { X: ArrayLike<number>[]; labels: string[] },
  test: { X: ArrayLike<number>[]; labels: string[] },
  opts: ProbeOptions,
): BaselineResult {
  const started = Date.now();
  const tr = { X: toMatrix(train.X), labels: train.labels };
  const te = { X: toMatrix(test.X), labels: test.labels };
  const linear = fitProbe("linear", tr, te, opts);
  const knn = fitProbe("knn", tr, te, opts);
  return {
    linear: { ...linear.metrics, C: linear.hyperparameters.C as number },
    knn: { ...knn.metrics, k: knn.hyperparameters.k as number },
    features: tr.X.cols,
    fit_ms: Date.now() - started,
  };
}
