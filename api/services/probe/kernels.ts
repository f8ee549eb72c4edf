// The dense logistic-regression objective, blocked for V8: parameters class-major (W as K × d, then
// b) so each class's weights are contiguous, and rows in blocks of 4 × classes in pairs, so the
// 8 running sums stay in registers and every load feeds two or four multiply-adds. This loop is
// where a probe fit spends its time (two passes of n·d·K multiply-adds per evaluation).
import type { Matrix } from "./matrix";

const RB = 4;

export function blockedObjective(X: Matrix, y: Int32Array, K: number, lambda: number) {
  const { rows: n, cols: d, data } = X;
  const z = new Float64Array(RB * K);
  return (theta: Float64Array, grad: Float64Array): number => {
    const bOff = K * d;
    grad.fill(0);
    let loss = 0;
    for (let i0 = 0; i0 < n; i0 += RB) {
      const rows = Math.min(RB, n - i0);
      // Rows past the end of a short last block repeat the last row with zero gradient weight.
      const o0 = i0 * d;
      const o1 = (i0 + Math.min(1, rows - 1)) * d;
      const o2 = (i0 + Math.min(2, rows - 1)) * d;
      const o3 = (i0 + Math.min(3, rows - 1)) * d;
      let k = 0;
      for (; k + 1 < K; k += 2) {
        const wa = k * d;
        const wb = wa + d;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let b0 = 0;
        let b1 = 0;
        let b2 = 0;
        let b3 = 0;
        for (let j = 0; j < d; j++) {
          const x0 = data[o0 + j] as number;
          const x1 = data[o1 + j] as number;
          const x2 = data[o2 + j] as number;
          const x3 = data[o3 + j] as number;
          const u = theta[wa + j] as number;
          const v = theta[wb + j] as number;
          a0 += x0 * u;
          a1 += x1 * u;
          a2 += x2 * u;
          a3 += x3 * u;
          b0 += x0 * v;
          b1 += x1 * v;
          b2 += x2 * v;
          b3 += x3 * v;
        }
        z[k] = a0;
        z[K + k] = a1;
        z[2 * K + k] = a2;
        z[3 * K + k] = a3;
        z[k + 1] = b0;
        z[K + k + 1] = b1;
        z[2 * K + k + 1] = b2;
        z[3 * K + k + 1] = b3;
      }
      if (k < K) {
        const wa = k * d;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        for (let j = 0; j < d; j++) {
          const u = theta[wa + j] as number;
          a0 += (data[o0 + j] as number) * u;
          a1 += (data[o1 + j] as number) * u;
          a2 += (data[o2 + j] as number) * u;
          a3 += (data[o3 + j] as number) * u;
        }
        z[k] = a0;
        z[K + k] = a1;
        z[2 * K + k] = a2;
        z[3 * K + k] = a3;
      }
      // Softmax per row; z becomes p - onehot(y), the row's gradient w.r.t. its scores.
      for (let r = 0; r < RB; r++) {
        const off = r * K;
        if (r >= rows) {
          for (let c = 0; c < K; c++) z[off + c] = 0;
          continue;
        }
        let max = -Infinity;
        for (let c = 0; c < K; c++) {
          const s = (z[off + c] as number) + (theta[bOff + c] as number);
          z[off + c] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let c = 0; c < K; c++) {
          const e = Math.exp((z[off + c] as number) - max);
          z[off + c] = e;
          sum += e;
        }
        const yi = y[i0 + r] as number;
        loss += Math.log(sum) - Math.log(z[off + yi] as number);
        const inv = 1 / sum;
        for (let c = 0; c < K; c++) z[off + c] = (z[off + c] as number) * inv;
        z[off + yi] = (z[off + yi] as number) - 1;
        for (let c = 0; c < K; c++) grad[bOff + c] = (grad[bOff + c] as number) + (z[off + c] as number);
      }
      k = 0;
      for (; k + 1 < K; k += 2) {
        const wa = k * d;
        const wb = wa + d;
        const g0 = z[k] as number;
        const g1 = z[K + k] as number;
        const g2 = z[2 * K + k] as number;
        const g3 = z[3 * K + k] as number;
        const h0 = z[k + 1] as number;
        const h1 = z[K + k + 1] as number;
        const h2 = z[2 * K + k + 1] as number;
        const h3 = z[3 * K + k + 1] as number;
        for (let j = 0; j < d; j++) {
          const x0 = data[o0 + j] as number;
          const x1 = data[o1 + j] as number;
          const x2 = data[o2 + j] as number;
          const x3 = data[o3 + j] as number;
          grad[wa + j] = (grad[wa + j] as number) + g0 * x0 + g1 * x1 + g2 * x2 + g3 * x3;
          grad[wb + j] = (grad[wb + j] as number) + h0 * x0 + h1 * x1 + h2 * x2 + h3 * x3;
        }
      }
      if (k < K) {
        const wa = k * d;
        const g0 = z[k] as number;
        const g1 = z[K + k] as number;
        const g2 = z[2 * K + k] as number;
        const g3 = z[3 * K + k] as number;
        for (let j = 0; j < d; j++) {
          grad[wa + j] =
            (grad[wa + j] as number) +
            g0 * (data[o0 + j] as number) +
            g1 * (data[o1 + j] as number) +
            g2 * (data[o2 + j] as number) +
            g3 * (data[o3 + j] as number);
        }
      }
    }
    let reg = 0;
    for (let i = 0; i < bOff; i++) {
      const w = theta[i] as number;
      reg += w * w;
      grad[i] = (grad[i] as number) / n + lambda * w;
    }
    for (let c = 0; c < K; c++) grad[bOff + c] = (grad[bOff + c] as number) / n;
    return loss / n + 0.5 * lambda * reg;
  };
}

/** Class-major parameters (K × d, then b) to the d × K layout models are stored in. */
export function classMajorToRowMajor(theta: Float64Array, d: number, K: number): Float64Array {
  const W = new Float64Array(d * K);
  for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) W[j * K + k] = theta[k * d + j] as number;
  return W;
}
