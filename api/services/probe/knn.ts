// Weighted k-nearest-neighbour probe as in DINO / solo-learn: cosine similarity to every train
// embedding, the k most similar vote with weight exp(sim / T), and the vote shares are the class
// probabilities.
import type { Matrix } from "./matrix";
import type { Csr } from "./sparse";
import { runSync, type Steps } from "./steps";

export const DEFAULT_K = 20;
export const DEFAULT_TEMPERATURE = 0.07;

/** Rows scaled to unit length (zero rows stay zero), so a dot product is the cosine. */
export function l2NormalizeRows(X: Matrix): Matrix {
  const { rows, cols: d } = X;
  const out = new Float64Array(X.data.length);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (X.data[i * d + j] as number) ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = (X.data[i * d + j] as number) * inv;
  }
  return { rows, cols: d, data: out };
}

export type KnnModel = { train: Matrix; y: Int32Array; classes: number; k: number; temperature: number };

export function fitKnn(X: Matrix, y: Int32Array, classes: number, k = DEFAULT_K, temperature = DEFAULT_TEMPERATURE) {
  return { train: l2NormalizeRows(X), y, classes, k: Math.min(k, X.rows), temperature } satisfies KnnModel;
}

/**
 * Class probabilities, n × K. Neighbours are ranked by similarity, ties broken by the lower train
 * index, so the result does not depend on sort stability. Weights are exp((sim - 1) / T): the
 * same ratios as exp(sim / T) without overflow for small T.
 */
export function knnProba(model: KnnModel, X: Matrix): Float64Array {
  return runSync(knnProbaSteps(model, X));
}

export function* knnProbaSteps(model: KnnModel, X: Matrix): Steps<Float64Array> {
  const { train, y, classes: K, k, temperature: T } = model;
  const Q = l2NormalizeRows(X);
  const d = Q.cols;
  const n = train.rows;
  const out = new Float64Array(Q.rows * K);
  const sims = new Float64Array(n);
  const top = topK(k);
  for (let q = 0; q < Q.rows; q++) {
    const qo = q * d;
    for (let i = 0; i < n; i++) {
      let s = 0;
      const o = i * d;
      for (let j = 0; j < d; j++) s += (Q.data[qo + j] as number) * (train.data[o + j] as number);
      sims[i] = s;
    }
    top.vote(sims, y, K, T, out, q * K);
    // A plain JS loop: about twice the time per multiply-add of the WASM kernels the other costs count.
    yield 2 * n * d;
  }
  return out;
}

/** The same vote over sparse rows that are already L2-normalised (TF-IDF), so a dot is the cosine. */
export function knnProbaSparse(
  train: Csr,
  y: Int32Array,
  K: number,
  X: Csr,
  k = DEFAULT_K,
  T = DEFAULT_TEMPERATURE,
): Float64Array {
  return runSync(knnProbaSparseSteps(train, y, K, X, k, T));
}

export function* knnProbaSparseSteps(
  train: Csr,
  y: Int32Array,
  K: number,
  X: Csr,
  k = DEFAULT_K,
  T = DEFAULT_TEMPERATURE,
): Steps<Float64Array> {
  const out = new Float64Array(X.rows * K);
  const sims = new Float64Array(train.rows);
  const dense = new Float64Array(X.cols);
  const top = topK(Math.min(k, train.rows));
  for (let q = 0; q < X.rows; q++) {
    for (let p = X.indptr[q] as number; p < (X.indptr[q + 1] as number); p++) {
      dense[X.indices[p] as number] = X.values[p] as number;
    }
    for (let i = 0; i < train.rows; i++) {
      let s = 0;
      for (let p = train.indptr[i] as number; p < (train.indptr[i + 1] as number); p++) {
        s += (train.values[p] as number) * (dense[train.indices[p] as number] as number);
      }
      sims[i] = s;
    }
    for (let p = X.indptr[q] as number; p < (X.indptr[q + 1] as number); p++) dense[X.indices[p] as number] = 0;
    top.vote(sims, y, K, T, out, q * K);
    yield 2 * (train.values.length + train.rows);
  }
  return out;
}

function topK(k: number) {
  const topIdx = new Int32Array(k);
  const topSim = new Float64Array(k);
  return {
    /** Writes the class shares of the k most similar rows into out[off .. off + K). */
    vote(sims: Float64Array, y: Int32Array, K: number, T: number, out: Float64Array, off: number) {
      // Insertion into a sorted top-k (k is small next to n).
      let filled = 0;
      for (let i = 0; i < sims.length; i++) {
        const s = sims[i] as number;
        if (filled === k && s <= (topSim[k - 1] as number)) continue;
        let p = filled < k ? filled++ : k - 1;
        while (p > 0 && (topSim[p - 1] as number) < s) {
          topSim[p] = topSim[p - 1] as number;
          topIdx[p] = topIdx[p - 1] as number;
          p--;
        }
        topSim[p] = s;
        topIdx[p] = i;
      }
      let total = 0;
      for (let r = 0; r < filled; r++) {
        const w = Math.exp(((topSim[r] as number) - 1) / T);
        const c = y[topIdx[r] as number] as number;
        out[off + c] = (out[off + c] as number) + w;
        total += w;
      }
      for (let c = 0; c < K; c++) out[off + c] = total > 0 ? (out[off + c] as number) / total : 1 / K;
    },
  };
}
