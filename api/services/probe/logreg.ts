// Multinomial logistic regression with an L2 penalty, fitted by L-BFGS: the model scikit-learn's
// LogisticRegression(solver="lbfgs") fits, with the same objective scaling, so `C` means the same:
//   f(W, b) = (1/n) Σ_i -log softmax(x_i W + b)[y_i] + (1 / (2 C n)) ||W||²   (the bias is not penalised)
// It is strictly convex, so any solver that reaches the tolerance lands on the same optimum.
import { blockedObjective, classMajorToRowMajor } from "./kernels";
import { minimize } from "./lbfgs";
import { fitStandardizer, type Matrix } from "./matrix";
import { type Csr, csrObjective, csrScores, csrTakeRows, isCsr } from "./sparse";
import { wasmObjective } from "./wasm_kernel";

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

/**
 * The objective and its gradient with W as d × K: the plain reference the blocked kernel
 * (kernels.ts, what fits use) is tested against.
 */
export function objective(X: Matrix, y: Int32Array, K: number, lambda: number) {
  const { rows: n, cols: d, data } = X;
  const z = new Float64Array(4 * K);
  return (theta: Float64Array, grad: Float64Array): number => {
    const W = theta; // first d*K entries
    const bOff = d * K;
    grad.fill(0);
    let loss = 0;
    for (let i0 = 0; i0 < n; i0 += 4) {
      const rowsHere = Math.min(4, n - i0);
      for (let r = 0; r < rowsHere; r++) for (let k = 0; k < K; k++) z[r * K + k] = theta[bOff + k] as number;
      if (rowsHere === 4) {
        const o0 = i0 * d;
        const o1 = o0 + d;
        const o2 = o1 + d;
        const o3 = o2 + d;
        for (let j = 0; j < d; j++) {
          const x0 = data[o0 + j] as number;
          const x1 = data[o1 + j] as number;
          const x2 = data[o2 + j] as number;
          const x3 = data[o3 + j] as number;
          const wj = j * K;
          for (let k = 0; k < K; k++) {
            const w = W[wj + k] as number;
            z[k] = (z[k] as number) + x0 * w;
            z[K + k] = (z[K + k] as number) + x1 * w;
            z[2 * K + k] = (z[2 * K + k] as number) + x2 * w;
            z[3 * K + k] = (z[3 * K + k] as number) + x3 * w;
          }
        }
      } else {
        for (let r = 0; r < rowsHere; r++) {
          const o = (i0 + r) * d;
          for (let j = 0; j < d; j++) {
            const x = data[o + j] as number;
            for (let k = 0; k < K; k++) z[r * K + k] = (z[r * K + k] as number) + x * (W[j * K + k] as number);
          }
        }
      }
      // Softmax in place: z becomes p - onehot(y), the gradient of the row's loss w.r.t. its scores.
      for (let r = 0; r < rowsHere; r++) {
        const off = r * K;
        let max = -Infinity;
        for (let k = 0; k < K; k++) max = Math.max(max, z[off + k] as number);
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const e = Math.exp((z[off + k] as number) - max);
          z[off + k] = e;
          sum += e;
        }
        const yi = y[i0 + r] as number;
        loss += Math.log(sum) - Math.log(z[off + yi] as number);
        for (let k = 0; k < K; k++) z[off + k] = (z[off + k] as number) / sum;
        z[off + yi] = (z[off + yi] as number) - 1;
        for (let k = 0; k < K; k++) grad[bOff + k] = (grad[bOff + k] as number) + (z[off + k] as number);
      }
      if (rowsHere === 4) {
        const o0 = i0 * d;
        const o1 = o0 + d;
        const o2 = o1 + d;
        const o3 = o2 + d;
        for (let j = 0; j < d; j++) {
          const x0 = data[o0 + j] as number;
          const x1 = data[o1 + j] as number;
          const x2 = data[o2 + j] as number;
          const x3 = data[o3 + j] as number;
          const wj = j * K;
          for (let k = 0; k < K; k++) {
            grad[wj + k] =
              (grad[wj + k] as number) +
              x0 * (z[k] as number) +
              x1 * (z[K + k] as number) +
              x2 * (z[2 * K + k] as number) +
              x3 * (z[3 * K + k] as number);
          }
        }
      } else {
        for (let r = 0; r < rowsHere; r++) {
          const o = (i0 + r) * d;
          for (let j = 0; j < d; j++) {
            const x = data[o + j] as number;
            for (let k = 0; k < K; k++) grad[j * K + k] = (grad[j * K + k] as number) + x * (z[r * K + k] as number);
          }
        }
      }
    }
    let reg = 0;
    for (let i = 0; i < bOff; i++) {
      const w = W[i] as number;
      reg += w * w;
      grad[i] = (grad[i] as number) / n + lambda * w;
    }
    for (let k = 0; k < K; k++) grad[bOff + k] = (grad[bOff + k] as number) / n;
    return loss / n + 0.5 * lambda * reg;
  };
}

export function fitLogReg(
  X: Design,
  y: Int32Array,
  K: number,
  opts: FitOptions,
): { model: LogRegModel; info: FitInfo; theta: Float64Array } {
  const d = X.cols;
  const lambda = 1 / (opts.C * X.rows);
  const x0 = opts.init ? Float64Array.from(opts.init) : new Float64Array(d * K + K);
  // Sparse rows keep W as d × K; dense ones go through the WASM SIMD kernel when it is loaded (else
  // the blocked JS one), both class-major (K × d).
  const f = isCsr(X)
    ? csrObjective(X, y, K, lambda)
    : (wasmObjective(X, y, K, lambda) ?? blockedObjective(X, y, K, lambda));
  const res = minimize(f, x0, {
    gtol: opts.tol ?? DEFAULT_TOL,
    maxIter: opts.maxIter ?? DEFAULT_MAX_ITER,
    memory: opts.memory ?? defaultMemory(x0.length),
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

export function softmaxRow(v: Float64Array, off: number, K: number) {
  let max = -Infinity;
  for (let k = 0; k < K; k++) max = Math.max(max, v[off + k] as number);
  let sum = 0;
  for (let k = 0; k < K; k++) {
    const e = Math.exp((v[off + k] as number) - max);
    v[off + k] = e;
    sum += e;
  }
  for (let k = 0; k < K; k++) v[off + k] = (v[off + k] as number) / sum;
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
    order.forEach((C, gi) => {
      const fit = fitLogReg(Xt, yt, K, { C, tol: opts.tol, maxIter: opts.maxIter, init });
      init = fit.theta;
      const pred = argmaxRows(predictProba(fit.model, Xh), K);
      let ok = 0;
      heldIdx.forEach((i, r) => {
        if (pred[r] === y[i]) ok++;
      });
      correct[gi] = (correct[gi] as number) + ok;
    });
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
export function fitLinearProbe(
  Xtrain: Matrix,
  y: Int32Array,
  K: number,
  opts: { foldOf: Int32Array; folds: number; grid?: readonly number[]; tol?: number; maxIter?: number },
) {
  const scaler = fitStandardizer(Xtrain);
  const Xs = scaler.apply(Xtrain);
  const cv = crossValidateC(Xs, y, K, opts.foldOf, opts.folds, opts.grid ?? DEFAULT_C_GRID, opts);
  const fit = fitLogReg(Xs, y, K, { C: cv.chosenC, tol: opts.tol, maxIter: opts.maxIter });
  return { scaler, model: fit.model, info: fit.info, cv };
}
