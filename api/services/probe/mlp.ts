// The MLP probe: one hidden ReLU layer on frozen, standardized embeddings, trained with AdamW on
// mini-batches and stopped early on a stratified validation split of train (the epoch with the
// lowest validation loss wins). The hidden layer's two products run in the dense WASM kernel
// (mlp_layer.ts); the output layer (H × K, small) and the optimizer stay in JS. Float32 weights
// are what is stored; the seed fixes init, split and batch order.
import { type Matrix, rng, shuffle, stratifiedSplit } from "./matrix";
import { HiddenLayer } from "./mlp_layer";
import { runSync, type Steps } from "./steps";

/**
 * `max_epochs` bounds the Worker CPU a probe can take: an epoch over the largest probe set (4096 ×
 * 768, hidden 256) is ~0.4 s, so 30 epochs stay under ~15 s (100, the first default, took 45 s).
 */
export const MLP_DEFAULTS = {
  hidden: 256,
  max_epochs: 30,
  patience: 8,
  lr: 1e-3,
  batch_size: 64,
  weight_decay: 1e-4,
  validation_split: 0.1,
} as const;

export type MlpOptions = Partial<{ -readonly [K in keyof typeof MLP_DEFAULTS]: number }> & { seed?: number };

export type MlpModel = {
  dims: number;
  hidden: number;
  classes: number;
  mean: Float64Array;
  scale: Float64Array;
  /** hidden × dims, row-major (hidden-major: each unit's weights contiguous, as the kernel reads them). */
  W1: Float32Array;
  b1: Float32Array;
  /** hidden × classes, row-major. */
  W2: Float32Array;
  b2: Float32Array;
};

export type MlpFitInfo = { epochs: number; best_epoch: number; best_val_loss: number | null; val_examples: number };

/** The output layer's parameters while training (the hidden layer's W1 lives in kernel memory). */
type Head = { b1: Float64Array; W2: Float64Array; b2: Float64Array };

/**
 * Hidden activations (rows × H, after ReLU) and class probabilities (rows × K) for standardized
 * rows of X; the layer's Z keeps the pre-activation scores.
 */
function forward(
  layer: HiddenLayer,
  head: Head,
  K: number,
  X: Float32Array,
  rows: ArrayLike<number>,
  H1: Float64Array,
  P: Float64Array,
) {
  const { hidden: H, hp } = layer;
  const { b1, W2, b2 } = head;
  layer.scores(X, rows);
  const Z = layer.Z;
  for (let r = 0; r < rows.length; r++) {
    const o = r * K;
    for (let k = 0; k < K; k++) P[o + k] = b2[k] as number;
    for (let h = 0; h < H; h++) {
      const a = (Z[r * hp + h] as number) + (b1[h] as number);
      // Inactive units add nothing; skipping them halves the output layer's work.
      if (a <= 0) {
        H1[r * H + h] = 0;
        continue;
      }
      H1[r * H + h] = a;
      const w = h * K;
      for (let k = 0; k < K; k++) P[o + k] = (P[o + k] as number) + a * (W2[w + k] as number);
    }
    let max = -Infinity;
    for (let k = 0; k < K; k++) if ((P[o + k] as number) > max) max = P[o + k] as number;
    let z = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp((P[o + k] as number) - max);
      P[o + k] = e;
      z += e;
    }
    for (let k = 0; k < K; k++) P[o + k] = (P[o + k] as number) / z;
  }
}

function standardized(m: Pick<MlpModel, "mean" | "scale">, X: Matrix): Float32Array {
  const out = new Float32Array(X.rows * X.cols);
  for (let i = 0; i < X.rows; i++) {
    for (let j = 0; j < X.cols; j++) {
      const at = i * X.cols + j;
      out[at] = ((X.data[at] as number) - (m.mean[j] as number)) / (m.scale[j] as number);
    }
  }
  return out;
}

/**
 * Per-column mean and population std over `rows` of X (fitStandardizer's statistics, its guard for
 * constant columns included), without copying the rows out: X can be most of the isolate's memory.
 */
function rowStatistics(X: Matrix, rows: number[]): { mean: Float64Array; scale: Float64Array } {
  const { cols: d, data } = X;
  const n = Math.max(rows.length, 1);
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (const i of rows) for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (data[i * d + j] as number);
  for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) / n;
  for (const i of rows) {
    for (let j = 0; j < d; j++) {
      const c = (data[i * d + j] as number) - (mean[j] as number);
      scale[j] = (scale[j] as number) + c * c;
    }
  }
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt((scale[j] as number) / n);
    scale[j] = s > 1e-12 * Math.max(1, Math.abs(mean[j] as number)) ? s : 1;
  }
  return { mean, scale };
}

/** Rows per forward call outside training (validation loss, prediction). */
const EVAL_BATCH = 256;

/** Mean cross-entropy of `rows` under the current weights, in batches so memory stays bounded. */
function loss(layer: HiddenLayer, head: Head, K: number, X: Float32Array, y: Int32Array, rows: number[]): number {
  const H1 = new Float64Array(EVAL_BATCH * layer.hidden);
  const P = new Float64Array(EVAL_BATCH * K);
  let total = 0;
  for (let s = 0; s < rows.length; s += EVAL_BATCH) {
    const batch = rows.slice(s, s + EVAL_BATCH);
    forward(layer, head, K, X, batch, H1, P);
    batch.forEach((i, r) => {
      total -= Math.log(Math.max(P[r * K + (y[i] as number)] as number, 1e-12));
    });
  }
  return total / Math.max(rows.length, 1);
}

/**
 * AdamW: one moment pair per parameter tensor; the decay is applied to the weights directly.
 * Every tensor is float64 so the update loop sees one array type (a mixed loop runs several times slower).
 */
class Adam {
  private t = 0;
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  constructor(
    private readonly params: Float64Array[],
    private readonly lr: number,
    private readonly decay: number,
  ) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }
  step(grads: Float64Array[]) {
    this.t += 1;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    const { lr, decay } = this;
    for (let n = 0; n < this.params.length; n++) {
      const p = this.params[n] as Float64Array;
      const g = grads[n] as Float64Array;
      const m = this.m[n] as Float64Array;
      const v = this.v[n] as Float64Array;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] as number;
        const mi = 0.9 * (m[i] as number) + 0.1 * gi;
        const vi = 0.999 * (v[i] as number) + 0.001 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = (p[i] as number) - lr * (mi / c1 / (Math.sqrt(vi / c2) + 1e-8) + decay * (p[i] as number));
      }
    }
  }
}

/**
 * Fits the MLP probe.
 *
 * Args:
 *   X: train embeddings, n × d (raw; standardized here with train statistics).
 *   y: class index per row, in [0, K).
 *   K: number of classes.
 *   opts: see MLP_DEFAULTS; `validation_split` of train (stratified, at least one per class with two or
 *     more examples) decides the stopping epoch and is not trained on.
 *
 * Returns:
 *   The weights of the best validation epoch (the last epoch's when the split is empty) and how the
 *   run went.
 */
export function fitMlp(X: Matrix, y: Int32Array, K: number, opts: MlpOptions = {}): MlpFit {
  return runSync(fitMlpSteps(X, y, K, opts));
}

type MlpFit = { model: MlpModel; info: MlpFitInfo };

export function* fitMlpSteps(X: Matrix, y: Int32Array, K: number, opts: MlpOptions = {}): Steps<MlpFit> {
  const o = { ...MLP_DEFAULTS, ...opts };
  const seed = opts.seed ?? 0;
  const random = rng(seed ^ 0x5bd1e995);
  const { train, test: val } = stratifiedSplit(y, K, o.validation_split, seed);
  const scaler = rowStatistics(X, train);
  const d = X.cols;
  const H = Math.max(1, Math.floor(o.hidden));
  const B = Math.max(1, Math.floor(o.batch_size));
  // He init for the ReLU layer, Glorot for the softmax layer (Box–Muller on the seeded generator).
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const layer = new HiddenLayer(d, H, Math.max(B, EVAL_BATCH));
  layer.setWeights(Float32Array.from({ length: H * d }, () => gauss() * Math.sqrt(2 / d)));
  const head: Head = {
    b1: new Float64Array(H),
    W2: Float64Array.from({ length: H * K }, () => Math.fround(gauss() * Math.sqrt(2 / (H + K)))),
    b2: new Float64Array(K),
  };
  const Xs = standardized(scaler, X);
  const grads: Head = { b1: new Float64Array(H), W2: new Float64Array(H * K), b2: new Float64Array(K) };
  const adam = new Adam([layer.W, head.b1, head.W2, head.b2], o.lr, o.weight_decay);
  const H1 = new Float64Array(Math.max(B, EVAL_BATCH) * H);
  const P = new Float64Array(Math.max(B, EVAL_BATCH) * K);
  const snapshot = (): MlpModel => ({
    dims: d,
    hidden: H,
    classes: K,
    mean: scaler.mean,
    scale: scaler.scale,
    W1: layer.weights(),
    b1: Float32Array.from(head.b1),
    W2: Float32Array.from(head.W2),
    b2: Float32Array.from(head.b2),
  });
  const hasVal = val.length > 0;
  let best = { model: snapshot(), epoch: 0, loss: hasVal ? loss(layer, head, K, Xs, y, val) : Infinity };
  let epochs = 0;
  for (let epoch = 1; epoch <= o.max_epochs; epoch++) {
    epochs = epoch;
    const order = shuffle(train.slice(), random);
    for (let s = 0; s < order.length; s += B) {
      const batch = order.slice(s, s + B);
      forward(layer, head, K, Xs, batch, H1, P);
      backward(layer, head, K, y, batch, H1, P, grads);
      adam.step([layer.G, grads.b1, grads.W2, grads.b2]);
      // Forward, backward and the weight gradient: three passes over the hidden layer in the WASM
      // kernel, which runs them about twice as fast per multiply-add as the logreg objective.
      yield 1.5 * batch.length * d * H;
    }
    if (!hasVal) continue;
    yield 0.5 * val.length * d * H;
    const v = loss(layer, head, K, Xs, y, val);
    if (v < best.loss) best = { model: snapshot(), epoch, loss: v };
    else if (epoch - best.epoch >= o.patience) break;
  }
  return {
    model: hasVal ? best.model : snapshot(),
    info: {
      epochs,
      best_epoch: hasVal ? best.epoch : epochs,
      best_val_loss: hasVal ? best.loss : null,
      val_examples: val.length,
    },
  };
}

/**
 * Gradients of the batch's mean cross-entropy: the output layer's into `grads`, dZ into the
 * layer's Z and then dW1 into its G.
 */
function backward(
  layer: HiddenLayer,
  head: Head,
  K: number,
  y: Int32Array,
  batch: number[],
  H1: Float64Array,
  P: Float64Array,
  grads: Head,
) {
  const { hidden: H, hp, Z } = layer;
  const { W2 } = head;
  const { b1: db1, W2: dW2, b2: db2 } = grads;
  db1.fill(0);
  dW2.fill(0);
  db2.fill(0);
  const inv = 1 / batch.length;
  const g = new Float64Array(K);
  for (let r = 0; r < batch.length; r++) {
    const label = y[batch[r] as number] as number;
    for (let k = 0; k < K; k++) {
      g[k] = ((P[r * K + k] as number) - (k === label ? 1 : 0)) * inv;
      db2[k] = (db2[k] as number) + (g[k] as number);
    }
    for (let h = 0; h < H; h++) {
      const a = H1[r * H + h] as number;
      // ReLU: an inactive unit passes no gradient back and adds nothing to dW2.
      if (a <= 0) {
        Z[r * hp + h] = 0;
        continue;
      }
      const w = h * K;
      let dh = 0;
      for (let k = 0; k < K; k++) {
        dW2[w + k] = (dW2[w + k] as number) + a * (g[k] as number);
        dh += (g[k] as number) * (W2[w + k] as number);
      }
      db1[h] = (db1[h] as number) + dh;
      Z[r * hp + h] = dh;
    }
    for (let h = H; h < hp; h++) Z[r * hp + h] = 0;
  }
  layer.gradient();
}

/** Class probabilities, n × K, for raw (unstandardized) rows. */
export function mlpProba(m: MlpModel, X: Matrix): Float64Array {
  const Xs = standardized(m, X);
  const K = m.classes;
  const layer = new HiddenLayer(m.dims, m.hidden, EVAL_BATCH);
  layer.setWeights(m.W1);
  const head: Head = { b1: Float64Array.from(m.b1), W2: Float64Array.from(m.W2), b2: Float64Array.from(m.b2) };
  const out = new Float64Array(X.rows * K);
  const H1 = new Float64Array(EVAL_BATCH * m.hidden);
  const P = new Float64Array(EVAL_BATCH * K);
  for (let s = 0; s < X.rows; s += EVAL_BATCH) {
    const rows = Array.from({ length: Math.min(EVAL_BATCH, X.rows - s) }, (_, r) => s + r);
    forward(layer, head, K, Xs, rows, H1, P);
    out.set(P.subarray(0, rows.length * K), s * K);
  }
  return out;
}
