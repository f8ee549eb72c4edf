// Multinomial logistic regression with an L2 penalty, fitted by L-BFGS: the model scikit-learn's
// LogisticRegression(solver="lbfgs") fits, with the same objective scaling, so `C` means the same:
//   f(W, b) = (1/n) Σ_i -log softmax(x_i W + b)[y_i] + (1 / (2 C n)) ||W||²   (the bias is not penalised)
// It is strictly convex, so any solver that reaches the tolerance lands on the same optimum.
// The objective is defined once (softmax.ts); dense rows evaluate it in the WASM kernel
// (wasm_kernel.ts), sparse ones in sparse.ts.
import { minimizeSteps } from "./lbfgs";
import { fitStandardizer, type Matrix } from "./matrix";
import { softmaxRow } from "./softmax";
import { type Csr, csrObjective, csrScores, csrTakeRows, isCsr } from "./sparse";
import { JS_WORK, runSync, type Steps } from "./steps";
import { classMajorToRowMajor, denseObjective } from "./wasm_kernel";

/** Dense rows (embeddings) or sparse ones (TF-IDF). */
export type Design = Matrix | Csr;

export type LogRegModel = {
  dims: number;
  classes: number;
  /** d × K, row-major. */
  W: Float64Array;
  b: Float64Array;
};

export type FitInfo = { iterations: number; evaluations: number; converged: boolean; gradNorm: number };

export type FitOptions = {
  C: number;
  /** Max |gradient| at which the solver stops (scikit-learn's `tol`; default 1e-6, 100× tighter than its). */
  tol?: number;
  maxIter?: number;
  /** L-BFGS history pairs (default: `defaultMemory`). */
  memory?: number;
  /** Warm start: a previous `theta` of a fit on the same kind of rows (e.g. the previous grid point). */
  init?: Float64Array;
};

export const DEFAULT_TOL = 1e-6;

/**
 * L-BFGS history: 50 pairs rather than scipy's 10 cut the iterations on ill-conditioned probes by
 * ~40% (bench/probe_fit, 10k × 384 × 10: 349 vs 573) for ~3 MB there; capped at 16 MiB of history.
 */
export const defaultMemory = (params: number) => Math.max(5, Math.min(50, Math.floor((16 * 2 ** 20) / (16 * params))));
export const DEFAULT_MAX_ITER = 1000;

type LogRegFit = { model: LogRegModel; info: FitInfo; theta: Float64Array };

export function fitLogReg(X: Design, y: Int32Array, K: number, opts: FitOptions): LogRegFit {
  return runSync(fitLogRegSteps(X, y, K, opts));
}

export function* fitLogRegSteps(X: Design, y: Int32Array, K: number, opts: FitOptions): Steps<LogRegFit> {
  const d = X.cols;
  const lambda = 1 / (opts.C * X.rows);
  const x0 = opts.init ? Float64Array.from(opts.init) : new Float64Array(d * K + K);
  // Sparse rows keep W as d × K; dense ones go through the WASM SIMD kernel, class-major (K × d).
  const f = isCsr(X) ? csrObjective(X, y, K, lambda) : denseObjective(X, y, K, lambda);
  const res = yield* minimizeSteps(f, x0, {
    gtol: opts.tol ?? DEFAULT_TOL,
    maxIter: opts.maxIter ?? DEFAULT_MAX_ITER,
    memory: opts.memory ?? defaultMemory(x0.length),
    // One evaluation is a forward and a backward pass over the rows, a softmax per row, and the
    // penalty over every weight (which dominates for wide sparse rows).
    cost: isCsr(X)
      ? JS_WORK * (2 * K * X.values.length + 4 * K * X.rows + 3 * x0.length)
      : 2 * K * X.rows * d + JS_WORK * 3 * x0.length,
  });
  const W = isCsr(X) ? res.x.slice(0, d * K) : classMajorToRowMajor(res.x, d, K);
  return {
    model: { dims: d, classes: K, W, b: res.x.slice(d * K) },
    info: {
      iterations: res.iterations,
      evaluations: res.evaluations,
      converged: res.converged,
      gradNorm: res.gradNorm,
    },
    theta: res.x,
  };
}

/** Class probabilities, n × K row-major. */
export function predictProba(model: LogRegModel, X: Design): Float64Array {
  const { dims: d, classes: K, W, b } = model;
  if (isCsr(X)) {
    const scores = csrScores(X, W, b, K);
    for (let i = 0; i < X.rows; i++) softmaxRow(scores, i * K, K);
    return scores;
  }
  const out = new Float64Array(X.rows * K);
  for (let i = 0; i < X.rows; i++) {
    const o = i * d;
    const p = i * K;
    for (let k = 0; k < K; k++) out[p + k] = b[k] as number;
    for (let j = 0; j < d; j++) {
      const x = X.data[o + j] as number;
      for (let k = 0; k < K; k++) out[p + k] = (out[p + k] as number) + x * (W[j * K + k] as number);
    }
    softmaxRow(out, p, K);
  }
  return out;
}

/** Row-wise argmax of an n × K matrix; ties go to the lower class index. */
export function argmaxRows(P: Float64Array, K: number): Int32Array {
  const n = P.length / K;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if ((P[i * K + k] as number) > (P[i * K + best] as number)) best = k;
    out[i] = best;
  }
  return out;
}

export const DEFAULT_C_GRID = [0.001, 0.01, 0.1, 1, 10] as const;

export type CvResult = {
  grid: number[];
  /** Mean held-out accuracy per grid value, in grid order. */
  scores: number[];
  chosenC: number;
  folds: number;
};

/**
 * k-fold cross-validation of C on already-standardised rows: for each fold, the grid is walked in
 * ascending C with warm starts (the path scikit-learn's LogisticRegressionCV takes); the best mean
 * accuracy wins and ties go to the smaller C (the stronger penalty), as there.
 */
export function crossValidateC(
  X: Design,
  y: Int32Array,
  K: number,
  foldOf: Int32Array,
  folds: number,
  grid: readonly number[],
  opts: { tol?: number; maxIter?: number } = {},
): CvResult {
  return runSync(crossValidateCSteps(X, y, K, foldOf, folds, grid, opts));
}

export function* crossValidateCSteps(
  X: Design,
  y: Int32Array,
  K: number,
  foldOf: Int32Array,
  folds: number,
  grid: readonly number[],
  opts: { tol?: number; maxIter?: number } = {},
): Steps<CvResult> {
  const order = [...grid].sort((a, b) => a - b);
  const correct = new Float64Array(order.length);
  for (let f = 0; f < folds; f++) {
    const trainIdx: number[] = [];
    const heldIdx: number[] = [];
    for (let i = 0; i < X.rows; i++) (foldOf[i] === f ? heldIdx : trainIdx).push(i);
    const Xt = takeRows(X, trainIdx);
    const yt = Int32Array.from(trainIdx, (i) => y[i] as number);
    const Xh = takeRows(X, heldIdx);
    let init: Float64Array | undefined;
    for (const [gi, C] of order.entries()) {
      const fit = yield* fitLogRegSteps(Xt, yt, K, { C, tol: opts.tol, maxIter: opts.maxIter, init });
      init = fit.theta;
      const pred = argmaxRows(predictProba(fit.model, Xh), K);
      let ok = 0;
      heldIdx.forEach((i, r) => {
        if (pred[r] === y[i]) ok++;
      });
      correct[gi] = (correct[gi] as number) + ok;
    }
  }
  const scores = order.map((_, gi) => (correct[gi] as number) / X.rows);
  let best = 0;
  for (let gi = 1; gi < order.length; gi++) if ((scores[gi] as number) > (scores[best] as number)) best = gi;
  return { grid: order, scores, chosenC: order[best] as number, folds };
}

export function takeRows<T extends Design>(X: T, idx: ArrayLike<number>): T {
  if (isCsr(X)) return csrTakeRows(X, idx) as T;
  const d = X.cols;
  const data = new Float64Array(idx.length * d);
  for (let r = 0; r < idx.length; r++) {
    const i = idx[r] as number;
    data.set(X.data.subarray(i * d, (i + 1) * d), r * d);
  }
  return { rows: idx.length, cols: d, data } as T;
}

/** The whole linear probe: standardise on train, choose C by CV, refit on all of train. */
type LinearProbeOptions = {
  foldOf: Int32Array;
  folds: number;
  grid?: readonly number[];
  tol?: number;
  maxIter?: number;
};

export function fitLinearProbe(Xtrain: Matrix, y: Int32Array, K: number, opts: LinearProbeOptions) {
  return runSync(fitLinearProbeSteps(Xtrain, y, K, opts));
}

export function* fitLinearProbeSteps(Xtrain: Matrix, y: Int32Array, K: number, opts: LinearProbeOptions) {
  const scaler = fitStandardizer(Xtrain);
  const Xs = scaler.apply(Xtrain);
  const cv = yield* crossValidateCSteps(Xs, y, K, opts.foldOf, opts.folds, opts.grid ?? DEFAULT_C_GRID, opts);
  const fit = yield* fitLogRegSteps(Xs, y, K, { C: cv.chosenC, tol: opts.tol, maxIter: opts.maxIter });
  return { scaler, model: fit.model, info: fit.info, cv };
}
