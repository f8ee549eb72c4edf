// Compressed sparse rows for raw-feature baselines (TF-IDF has thousands of columns, a few dozen
// non-zeros per row): the logistic-regression objective and scores without densifying.
import { penalize, softmaxGradient } from "./softmax";

export type Csr = { rows: number; cols: number; indptr: Int32Array; indices: Int32Array; values: Float64Array };

export const isCsr = (x: unknown): x is Csr => typeof x === "object" && x !== null && "indptr" in x;

export function csrTakeRows(X: Csr, idx: ArrayLike<number>): Csr {
  let nnz = 0;
  for (let r = 0; r < idx.length; r++) {
    const i = idx[r] as number;
    nnz += (X.indptr[i + 1] as number) - (X.indptr[i] as number);
  }
  const indptr = new Int32Array(idx.length + 1);
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let p = 0;
  for (let r = 0; r < idx.length; r++) {
    const i = idx[r] as number;
    for (let q = X.indptr[i] as number; q < (X.indptr[i + 1] as number); q++) {
      indices[p] = X.indices[q] as number;
      values[p] = X.values[q] as number;
      p++;
    }
    indptr[r + 1] = p;
  }
  return { rows: idx.length, cols: X.cols, indptr, indices, values };
}

/** Scores x_i W + b for every row, n × K (W is d × K row-major). */
export function csrScores(X: Csr, W: Float64Array, b: Float64Array, K: number): Float64Array {
  const out = new Float64Array(X.rows * K);
  for (let i = 0; i < X.rows; i++) {
    const o = i * K;
    for (let k = 0; k < K; k++) out[o + k] = b[k] as number;
    for (let q = X.indptr[i] as number; q < (X.indptr[i + 1] as number); q++) {
      const v = X.values[q] as number;
      const wj = (X.indices[q] as number) * K;
      for (let k = 0; k < K; k++) out[o + k] = (out[o + k] as number) + v * (W[wj + k] as number);
    }
  }
  return out;
}

/** The objective of softmax.ts over sparse rows (W as d × K), gradient in place. */
export function csrObjective(X: Csr, y: Int32Array, K: number, lambda: number) {
  const { rows: n, cols: d } = X;
  const z = new Float64Array(K);
  return (theta: Float64Array, grad: Float64Array): number => {
    const bOff = d * K;
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < K; k++) z[k] = theta[bOff + k] as number;
      const start = X.indptr[i] as number;
      const end = X.indptr[i + 1] as number;
      for (let q = start; q < end; q++) {
        const v = X.values[q] as number;
        const wj = (X.indices[q] as number) * K;
        for (let k = 0; k < K; k++) z[k] = (z[k] as number) + v * (theta[wj + k] as number);
      }
      loss += softmaxGradient(z, 0, K, y[i] as number);
      for (let k = 0; k < K; k++) grad[bOff + k] = (grad[bOff + k] as number) + (z[k] as number);
      for (let q = start; q < end; q++) {
        const v = X.values[q] as number;
        const wj = (X.indices[q] as number) * K;
        for (let k = 0; k < K; k++) grad[wj + k] = (grad[wj + k] as number) + v * (z[k] as number);
      }
    }
    return penalize(theta, grad, bOff, K, n, lambda, loss);
  };
}
