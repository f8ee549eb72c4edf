// Micro-batching: how a request's sequences are split into ORT runs so that peak WASM memory stays
// under budget whatever the request holds, with as little padding as possible.

/** Peak WASM memory the micro-batch token budget is sized for (Workers isolates have 128 MB in all). */
export const WASM_PEAK_TARGET_BYTES = 96 * 1024 * 1024;
/** ORT's own heap before any model is loaded (measured: 16 MiB). */
const ORT_BASE_BYTES = 16 * 1024 * 1024;
const MAX_BUDGET = 8192;
/** Rows per run; more rows than this buys nothing on one thread. */
export const MAX_BATCH_ROWS = 64;

export type ModelShape = { dims: number; maxTokens: number; weightBytes: number };

/**
 * Tokens (rows × padded width) one ORT run may hold for a model of this shape. ORT's WASM heap holds
 * ORT's base heap, the weights once (external data is copied in, not duplicated) and the run's
 * activations; whatever of the 96 MiB target the first two leave is the activation budget. The
 * activation cost per token is estimated from the hidden size (~24 hidden-sized float vectors live
 * per token in an encoder layer: Q/K/V, attention output, the 4× FFN, residuals, quantized copies)
 * plus attention scores (heads = dims/32, width up to max_tokens, scores and probabilities).
 * Measured in workerd on all-MiniLM-L6-v2 int8 (6 layers/384, 55.7 MiB of weights): 71.6 MiB after
 * load, 123.9 MiB after one 8×128 run (~51 KiB per token; the estimate gives 60 KiB), so this
 * gives it 414 tokens.
 */
export function tokenBudget(shape: ModelShape, override?: number): number {
  if (override && Number.isFinite(override) && override > 0) return Math.floor(override);
  const perToken = tokenActivationBytes(shape);
  const room = WASM_PEAK_TARGET_BYTES - ORT_BASE_BYTES - shape.weightBytes;
  const budget = Math.floor(room / perToken);
  // Never below one full-length sequence: a single max_tokens input must always fit one run.
  return Math.max(Math.min(budget, MAX_BUDGET), shape.maxTokens);
}

/** The activation estimate `tokenBudget` divides by: bytes one token of one run holds. */
export function tokenActivationBytes(shape: { dims: number; maxTokens: number }): number {
  const heads = Math.max(1, Math.round(shape.dims / 32));
  return shape.dims * 4 * 24 + heads * shape.maxTokens * 4 * 2;
}

/**
 * Whether weights of `weightBytes` plus ORT's base heap plus `activationBytes` (one run's worth)
 * stay within the peak WASM target: the same arithmetic the budgets above use, so what import
 * checks against is what serving will hold.
 */
export const fitsWasmTarget = (weightBytes: number, activationBytes: number) =>
  ORT_BASE_BYTES + weightBytes + activationBytes <= WASM_PEAK_TARGET_BYTES;

/**
 * Splits sequences of the given lengths into micro-batches: longest first, each batch padded to
 * its first (longest) row, rows added while rows × width stays within `budget`. Returns the
 * original indices of each batch. A sequence longer than the budget runs alone.
 */
export function planBatches(lengths: number[], budget: number, maxRows = MAX_BATCH_ROWS): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => (lengths[b] as number) - (lengths[a] as number) || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let width = 0;
  for (const i of order) {
    const len = lengths[i] as number;
    if (current.length === 0) {
      current = [i];
      width = len;
      continue;
    }
    if ((current.length + 1) * width <= budget && current.length < maxRows) {
      current.push(i);
    } else {
      batches.push(current);
      current = [i];
      width = len;
    }
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
