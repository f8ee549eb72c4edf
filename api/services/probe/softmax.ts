// The pieces every logistic-regression objective shares (dense WASM and sparse TF-IDF alike), so
// both compute one definition:
//   f(W, b) = (1/n) Σ_i -log softmax(x_i W + b)[y_i] + (λ/2) ||W||²   (the bias is not penalised)

/** Softmax of `v[off..off+K)` in place (shifted by the max, so large scores do not overflow). */
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

/**
 * One row's loss term and its gradient w.r.t. the row's scores, in place: `z[off..off+K)` holds the
 * scores (bias included) and becomes `p - onehot(y)`. Returns `-log p_y`.
 */
export function softmaxGradient(z: Float64Array, off: number, K: number, y: number): number {
  softmaxRow(z, off, K);
  const loss = -Math.log(z[off + y] as number);
  z[off + y] = (z[off + y] as number) - 1;
  return loss;
}

/**
 * Ends an evaluation whose `grad` holds the summed data gradients (the first `wLen` entries for W,
 * the K after them for b): the means over `n` rows plus the L2 penalty on W. Returns the objective.
 */
export function penalize(
  theta: Float64Array,
  grad: Float64Array,
  wLen: number,
  K: number,
  n: number,
  lambda: number,
  lossSum: number,
): number {
  let reg = 0;
  for (let i = 0; i < wLen; i++) {
    const w = theta[i] as number;
    reg += w * w;
    grad[i] = (grad[i] as number) / n + lambda * w;
  }
  for (let k = 0; k < K; k++) grad[wLen + k] = (grad[wLen + k] as number) / n;
  return lossSum / n + 0.5 * lambda * reg;
}
