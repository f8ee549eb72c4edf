// One probe from labeled vectors: checks that say what to change, the fit (linear, kNN or MLP),
// test metrics, and the weights to store. Pure: vectors in, plain objects out.
import { unprocessable } from "../../lib/errors";
import { type ModalItem, tooLarge } from "../encoder/items";
import { DEFAULT_K, DEFAULT_TEMPERATURE, fitKnn, knnProba, knnProbaSteps } from "./knn";
import { argmaxRows, DEFAULT_C_GRID, DEFAULT_MAX_ITER, DEFAULT_TOL, fitLinearProbeSteps, predictProba } from "./logreg";
import { type Matrix, standardizer, stratifiedFolds, stratifiedSplit } from "./matrix";
import { classificationMetrics, type ProbeMetrics } from "./metrics";
import { fitMlpSteps, MLP_DEFAULTS, type MlpOptions, mlpProba } from "./mlp";
import { runSync, runYielding, type Steps } from "./steps";
// Every fit in the Worker comes through here (baseline.ts too): load the dense WASM kernel once.
import "./wasm_module";

/** Train + test examples one probe or evaluation may embed and fit: the fit holds every vector in the isolate. */
export const MAX_PROBE_EXAMPLES = 4096;
export const DEFAULT_FOLDS = 5;
export const DEFAULT_SPLIT = 0.2;

export const PROBE_KINDS = ["linear", "knn", "mlp"] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];
export type ProbeOptions = {
  folds?: number;
  c_grid?: number[];
  tol?: number;
  max_iter?: number;
  k?: number;
  temperature?: number;
  seed?: number;
} & Omit<MlpOptions, "seed">;

/**
 * Train rows × dims × hidden × epochs one MLP fit may cost: the defaults on the largest set
 * (4096 × 768, hidden 256, 100 epochs), about a minute of Worker CPU.
 */
export const MAX_MLP_WORK = MAX_PROBE_EXAMPLES * 768 * 256 * 100;
/** Hidden-layer weights (dims × hidden) an MLP may hold: with its gradient and AdamW moments, 32 MB. */
export const MAX_MLP_WEIGHTS = 1 << 20;

/** A probe input: text, or an image/series item of decision 0005. */
export type ProbeInput = string | ModalItem;
/** A labeled input; `at` names where it came from (`train[3].input`, `train.dataset cat/1.png`) for errors. */
export type Example = { input: ProbeInput; label: string; at?: string };
export type Hyperparameters = Record<string, unknown>;

/** What R2 holds for a probe: enough to predict without the training data (kNN keeps its train set). */
export type ProbeWeights =
  | {
      format: "selfsup.probe/v1";
      kind: "linear";
      labels: string[];
      dims: number;
      mean: number[];
      scale: number[];
      W: number[];
      b: number[];
    }
  | {
      format: "selfsup.probe/v1";
      kind: "knn";
      labels: string[];
      dims: number;
      k: number;
      temperature: number;
      train: number[];
      y: number[];
    }
  | {
      format: "selfsup.probe/v1";
      kind: "mlp";
      labels: string[];
      dims: number;
      hidden: number;
      mean: number[];
      scale: number[];
      /** hidden × dims, row-major. */
      W1: number[];
      b1: number[];
      /** hidden × classes, row-major. */
      W2: number[];
      b2: number[];
    };

/** Sorted label names and each example's class index; the sort makes class order reproducible. */
export function encodeLabels(labels: string[]): { names: string[]; y: Int32Array } {
  const names = [...new Set(labels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(names.map((n, i) => [n, i]));
  return { names, y: Int32Array.from(labels, (l) => index.get(l) as number) };
}

export function toMatrix(vectors: ArrayLike<number>[]): Matrix {
  const d = vectors.length > 0 ? (vectors[0] as ArrayLike<number>).length : 0;
  const data = new Float64Array(vectors.length * d);
  vectors.forEach((v, i) => {
    data.set(v, i * d);
  });
  return { rows: vectors.length, cols: d, data };
}

/** The train/test examples: given, or a stratified split of train reproducible from its seed. */
export function planSplit(
  train: Example[],
  test: Example[] | { split: number; seed: number },
): { train: Example[]; test: Example[] } {
  if (Array.isArray(test)) return { train, test };
  const { names, y } = encodeLabels(train.map((e) => e.label));
  const s = stratifiedSplit(y, names.length, test.split, test.seed);
  return { train: s.train.map((i) => train[i] as Example), test: s.test.map((i) => train[i] as Example) };
}

/** The checks a probe needs before any embedding is paid for; each names the field and the fix. */
export function checkExamples(kind: ProbeKind, train: Example[], test: Example[], opts: ProbeOptions) {
  const total = train.length + test.length;
  if (total > MAX_PROBE_EXAMPLES) {
    throw tooLarge(
      `train + test hold ${total} examples; one probe or evaluation takes at most ${MAX_PROBE_EXAMPLES}. Subsample the set or split it across probes.`,
      "train",
    );
  }
  const counts = new Map<string, number>();
  for (const e of train) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
  if (counts.size < 2) {
    throw unprocessable(
      `train: a probe needs at least 2 classes; found ${counts.size} (${[...counts.keys()].join(", ") || "none"}). Add examples of another label.`,
      [{ path: "train", message: "needs at least 2 distinct labels" }],
    );
  }
  if (test.length === 0) {
    throw unprocessable("test: no test examples; send some, or a larger `split`.", [
      { path: "test", message: "must not be empty" },
    ]);
  }
  const unseen = [...new Set(test.map((e) => e.label))].filter((l) => !counts.has(l));
  if (unseen.length > 0) {
    throw unprocessable(
      `test: label(s) ${unseen.map((l) => JSON.stringify(l)).join(", ")} never occur in train, so no probe can predict them; add train examples or drop them from test.`,
      [{ path: "test", message: "labels must occur in train" }],
    );
  }
  if (kind === "linear") {
    const folds = opts.folds ?? DEFAULT_FOLDS;
    const small = [...counts.entries()].filter(([, n]) => n < folds);
    if (small.length > 0) {
      const list = small.map(([l, n]) => `${JSON.stringify(l)} has ${n}`).join(", ");
      throw unprocessable(
        `train: ${folds}-fold cross-validation needs at least ${folds} train examples per class; ${list}. Add examples or lower options.folds (min 2).`,
        [{ path: "options.folds", message: `every class needs at least ${folds} train examples` }],
      );
    }
  }
}

export type ProbeFit = {
  labels: string[];
  metrics: ProbeMetrics;
  hyperparameters: Hyperparameters;
  weights: ProbeWeights;
  fit_ms: number;
};

type Labeled = { X: Matrix; labels: string[] };

/** The fit in one go (inline probes, promotion scoring: small sets inside a request). */
export const fitProbe = (kind: ProbeKind, train: Labeled, test: Labeled, opts: ProbeOptions): ProbeFit =>
  runSync(fitProbeSteps(kind, train, test, opts));

/** The same fit, giving the event loop a turn every few milliseconds of work (the work queue's). */
export const fitProbeAsync = (kind: ProbeKind, train: Labeled, test: Labeled, opts: ProbeOptions): Promise<ProbeFit> =>
  runYielding(fitProbeSteps(kind, train, test, opts));

export function* fitProbeSteps(kind: ProbeKind, train: Labeled, test: Labeled, opts: ProbeOptions): Steps<ProbeFit> {
  const started = Date.now();
  const { names, y } = encodeLabels(train.labels);
  const index = new Map(names.map((n, i) => [n, i]));
  const yTest = Int32Array.from(test.labels, (l) => index.get(l) as number);
  const K = names.length;
  const seed = opts.seed ?? 0;
  let proba: Float64Array;
  let hyperparameters: Hyperparameters;
  let weights: ProbeWeights;
  if (kind === "linear") {
    const folds = opts.folds ?? DEFAULT_FOLDS;
    const tol = opts.tol ?? DEFAULT_TOL;
    const maxIter = opts.max_iter ?? DEFAULT_MAX_ITER;
    const fit = yield* fitLinearProbeSteps(train.X, y, K, {
      foldOf: stratifiedFolds(y, K, folds, seed),
      folds,
      grid: opts.c_grid ?? DEFAULT_C_GRID,
      tol,
      maxIter,
    });
    proba = predictProba(fit.model, fit.scaler.apply(test.X));
    hyperparameters = {
      C: fit.cv.chosenC,
      l2_lambda: 1 / (fit.cv.chosenC * train.X.rows),
      c_grid: fit.cv.grid,
      cv_accuracy: fit.cv.scores,
      folds,
      seed,
      solver: "lbfgs",
      tol,
      max_iter: maxIter,
      iterations: fit.info.iterations,
      converged: fit.info.converged,
      standardized: true,
    };
    weights = {
      format: "selfsup.probe/v1",
      kind,
      labels: names,
      dims: train.X.cols,
      mean: Array.from(fit.scaler.mean),
      scale: Array.from(fit.scaler.scale),
      W: Array.from(fit.model.W),
      b: Array.from(fit.model.b),
    };
  } else if (kind === "mlp") {
    const o = { ...MLP_DEFAULTS, ...mlpOptions(opts), seed };
    checkMlpSize(train.X, o);
    const { model, info } = yield* fitMlpSteps(train.X, y, K, o);
    proba = mlpProba(model, test.X);
    hyperparameters = {
      ...o,
      epochs: info.epochs,
      best_epoch: info.best_epoch,
      best_val_loss: info.best_val_loss,
      val_examples: info.val_examples,
      activation: "relu",
      optimizer: "adamw",
      standardized: true,
    };
    weights = {
      format: "selfsup.probe/v1",
      kind,
      labels: names,
      dims: train.X.cols,
      hidden: model.hidden,
      mean: Array.from(model.mean),
      scale: Array.from(model.scale),
      W1: Array.from(model.W1),
      b1: Array.from(model.b1),
      W2: Array.from(model.W2),
      b2: Array.from(model.b2),
    };
  } else {
    const k = Math.min(opts.k ?? DEFAULT_K, train.X.rows);
    const temperature = opts.temperature ?? DEFAULT_TEMPERATURE;
    const model = fitKnn(train.X, y, K, k, temperature);
    proba = yield* knnProbaSteps(model, test.X);
    hyperparameters = { k, temperature, similarity: "cosine", weights: "exp(sim / T)", seed };
    weights = {
      format: "selfsup.probe/v1",
      kind,
      labels: names,
      dims: train.X.cols,
      k,
      temperature,
      train: Array.from(model.train.data, (v) => Math.fround(v)),
      y: Array.from(y),
    };
  }
  const metrics = classificationMetrics(yTest, argmaxRows(proba, K), names);
  return { labels: names, metrics, hyperparameters, weights, fit_ms: Date.now() - started };
}

/** Class probabilities for new vectors from stored weights, n × K. */
export function predictFromWeights(w: ProbeWeights, X: Matrix): Float64Array {
  const K = w.labels.length;
  if (w.kind === "linear") {
    const scaler = standardizer(Float64Array.from(w.mean), Float64Array.from(w.scale));
    return predictProba(
      { dims: w.dims, classes: K, W: Float64Array.from(w.W), b: Float64Array.from(w.b) },
      scaler.apply(X),
    );
  }
  if (w.kind === "mlp") {
    return mlpProba(
      {
        dims: w.dims,
        hidden: w.hidden,
        classes: K,
        mean: Float64Array.from(w.mean),
        scale: Float64Array.from(w.scale),
        W1: Float32Array.from(w.W1),
        b1: Float32Array.from(w.b1),
        W2: Float32Array.from(w.W2),
        b2: Float32Array.from(w.b2),
      },
      X,
    );
  }
  const train = { rows: w.y.length, cols: w.dims, data: Float64Array.from(w.train) };
  return knnProba({ train, y: Int32Array.from(w.y), classes: K, k: w.k, temperature: w.temperature }, X);
}

const MLP_KEYS = Object.keys(MLP_DEFAULTS) as (keyof typeof MLP_DEFAULTS)[];

/** The MLP's options out of the shared probe options (the rest belong to linear and kNN). */
function mlpOptions(opts: ProbeOptions): MlpOptions {
  const out: MlpOptions = {};
  for (const key of MLP_KEYS) if (opts[key] !== undefined) out[key] = opts[key];
  return out;
}

/** The MLP's size checks before any embedding: `rows` train examples of `dims`-dim embeddings. */
export function checkProbeSize(kind: ProbeKind, rows: number, dims: number, opts: ProbeOptions) {
  if (kind === "mlp")
    checkMlpSize({ rows, cols: dims, data: new Float64Array(0) }, { ...MLP_DEFAULTS, ...mlpOptions(opts) });
}

/** Refuses an MLP whose memory or CPU would not fit one Worker request; names the option to lower. */
function checkMlpSize(X: Matrix, o: Required<Omit<MlpOptions, "seed">>) {
  const weights = X.cols * o.hidden;
  if (weights > MAX_MLP_WEIGHTS) {
    const most = Math.floor(MAX_MLP_WEIGHTS / X.cols);
    throw unprocessable(
      `options.hidden: ${o.hidden} hidden units on ${X.cols}-dim embeddings are ${weights} weights; an MLP probe holds at most ${MAX_MLP_WEIGHTS}. Use hidden <= ${most}.`,
      [{ path: "options.hidden", message: `at most ${most} for ${X.cols}-dim embeddings` }],
    );
  }
  const work = X.rows * weights * o.max_epochs;
  if (work > MAX_MLP_WORK) {
    const most = Math.max(1, Math.floor(MAX_MLP_WORK / (X.rows * weights)));
    throw unprocessable(
      `options.max_epochs: ${o.max_epochs} epochs of ${X.rows} examples × ${weights} hidden weights exceed one request's CPU budget; use max_epochs <= ${most}, fewer hidden units or fewer examples.`,
      [{ path: "options.max_epochs", message: `at most ${most} with these sizes` }],
    );
  }
}
