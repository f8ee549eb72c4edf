// The plain logistic-regression objective the dense WASM kernel (api/services/probe/wasm_kernel.ts)
// is checked against: one row at a time, no blocking, no padding, no shared helpers, written
// straight from the formula
//   f(W, b) = (1/n) Σ_i -log softmax(x_i W + b)[y_i] + (λ/2) ||W||²   (W as d × K, then b).
import type { Matrix } from "../api/services/probe/matrix";

/** The objective and its gradient with W row-major (d × K), for finite differences and kernels. */
export function referenceObjective(X: Matrix, y: Int32Array, K: number, lambda: number) {
  const { rows: n, cols: d, data } = X;
  return (theta: Float64Array, grad: Float64Array): number => {
    const bOff = d * K;
    grad.fill(0);
    let loss = 0;
    const z = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < K; k++) {
        let s = theta[bOff + k] as number;
        for (let j = 0; j < d; j++) s += (data[i * d + j] as number) * (theta[j * K + k] as number);
        z[k] = s;
      }
      const max = Math.max(...z);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp((z[k] as number) - max);
      const yi = y[i] as number;
      loss += Math.log(sum) - ((z[yi] as number) - max);
      for (let k = 0; k < K; k++) {
        const g = Math.exp((z[k] as number) - max) / sum - (k === yi ? 1 : 0);
        grad[bOff + k] = (grad[bOff + k] as number) + g;
        for (let j = 0; j < d; j++) grad[j * K + k] = (grad[j * K + k] as number) + g * (data[i * d + j] as number);
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

/** Row-major parameters (W as d × K, then b) in the class-major layout the WASM kernel takes. */
export function toClassMajor(theta: Float64Array, d: number, K: number): Float64Array {
  const out = new Float64Array(theta.length);
  for (let j = 0; j < d; j++) for (let k = 0; k < K; k++) out[k * d + j] = theta[j * K + k] as number;
  out.set(theta.subarray(d * K), d * K);
  return out;
}
