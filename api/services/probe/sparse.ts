// Compressed sparse rows for raw-feature baselines (TF-IDF has thousands of columns, a few dozen
// non-zeros per row): the logistic-regression objective and scores without densifying.
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

/** The same objective as logreg.ts's dense one: mean log-loss + (λ/2)||W||², gradient in place. */
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
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, z[k] as number);
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const e = Math.exp((z[k] as number) - max);
        z[k] = e;
        sum += e;
      }
      const yi = y[i] as number;
      loss += Math.log(sum) - Math.log(z[yi] as number);
      for (let k = 0; k < K; k++) z[k] = (z[k] as number) / sum;
      z[yi] = (z[yi] as number) - 1;
      for (let k = 0; k < K; k++) grad[bOff + k] = (grad[bOff + k] as number) + (z[k] as number);
      for (let q = start; q < end; q++) {
        const v = X.values[q] as number;
        const wj = (X.indices[q] as number) * K;
        for (let k = 0; k < K; k++) grad[wj + k] = (grad[wj + k] as number) + v * (z[k] as number);
      }
    }
    let reg = 0;
    for (let i = 0; i < bOff; i++) {
      const w = theta[i] as number;
      reg += w * w;
      grad[i] = (grad[i] as number) / n + lambda * w;
    }
    for (let k = 0; k < K; k++) grad[bOff + k] = (grad[bOff + k] as number) / n;
    return loss / n + 0.5 * lambda * reg;
  };
}
