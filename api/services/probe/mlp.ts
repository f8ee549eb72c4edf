// The MLP probe: one hidden ReLU layer on frozen, standardized embeddings, trained with Adam on
// mini-batches and stopped early on a stratified validation split of train (the epoch with the
// lowest validation loss wins). Float32 storage with float64 accumulation keeps one epoch over a
// 4096 × 768 probe set inside a second of Worker CPU; the seed fixes init, split and batch order.
import { takeRows } from "./logreg";
import { fitStandardizer, type Matrix, rng, shuffle, stratifiedSplit } from "./matrix";

export const MLP_DEFAULTS = {
  hidden: 256,
  max_epochs: 100,
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
  /** dims × hidden, row-major. */
  W1: Float32Array;
  b1: Float32Array;
  /** hidden × classes, row-major. */
  W2: Float32Array;
  b2: Float32Array;
};

export type MlpFitInfo = { epochs: number; best_epoch: number; best_val_loss: number | null; val_examples: number };

/** Hidden activations (n × H, after ReLU) and class probabilities (n × K) for standardized rows. */
function forward(m: MlpModel, X: Float32Array, rows: ArrayLike<number>, H1: Float32Array, P: Float64Array) {
  const { dims: d, hidden: H, classes: K, W1, b1, W2, b2 } = m;
  const acc = new Float64Array(H);
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r] as number;
    acc.set(b1);
    for (let j = 0; j < d; j++) {
      const x = X[i * d + j] as number;
      if (x === 0) continue;
      const w = j * H;
      for (let h = 0; h < H; h++) acc[h] = (acc[h] as number) + x * (W1[w + h] as number);
    }
    for (let h = 0; h < H; h++) H1[r * H + h] = Math.max(0, acc[h] as number);
    let max = -Infinity;
    for (let k = 0; k < K; k++) {
      let s = b2[k] as number;
      for (let h = 0; h < H; h++) s += (H1[r * H + h] as number) * (W2[h * K + k] as number);
      P[r * K + k] = s;
      if (s > max) max = s;
    }
    let z = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp((P[r * K + k] as number) - max);
      P[r * K + k] = e;
      z += e;
    }
    for (let k = 0; k < K; k++) P[r * K + k] = (P[r * K + k] as number) / z;
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

/** Mean cross-entropy of `rows` under the model, in batches so memory stays bounded. */
function loss(m: MlpModel, X: Float32Array, y: Int32Array, rows: number[]): number {
  const B = 256;
  const H1 = new Float32Array(B * m.hidden);
  const P = new Float64Array(B * m.classes);
  let total = 0;
  for (let s = 0; s < rows.length; s += B) {
    const batch = rows.slice(s, s + B);
    forward(m, X, batch, H1, P);
    batch.forEach((i, r) => {
      total -= Math.log(Math.max(P[r * m.classes + (y[i] as number)] as number, 1e-12));
    });
  }
  return total / Math.max(rows.length, 1);
}

/** One Adam moment pair per parameter tensor. */
class Adam {
  private t = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  constructor(
    private readonly params: Float32Array[],
    private readonly lr: number,
    private readonly decay: number,
  ) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }
  step(grads: Float32Array[]) {
    this.t += 1;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    this.params.forEach((p, n) => {
      const g = grads[n] as Float32Array;
      const m = this.m[n] as Float32Array;
      const v = this.v[n] as Float32Array;
      for (let i = 0; i < p.length; i++) {
        // AdamW: decay applied to the weights directly, not through the moments.
        const gi = g[i] as number;
        m[i] = 0.9 * (m[i] as number) + 0.1 * gi;
        v[i] = 0.999 * (v[i] as number) + 0.001 * gi * gi;
        const update = (m[i] as number) / c1 / (Math.sqrt((v[i] as number) / c2) + 1e-8);
        p[i] = (p[i] as number) - this.lr * (update + this.decay * (p[i] as number));
      }
    });
  }
}

const copy = (m: MlpModel): MlpModel => ({
  ...m,
  W1: m.W1.slice(),
  b1: m.b1.slice(),
  W2: m.W2.slice(),
  b2: m.b2.slice(),
});

/**
 * Fits the MLP probe.
 *
 * Args:
 *   X: train embeddings, n × d (raw; standardized here with train statistics).
 *   y: class index per row, in [0, K).
 *   K: number of classes.
 *   opts: see MLP_DEFAULTS; `validation_split` of train (stratified, at least one per class with two or
 *     more examples) decides the stopping epoch and is not trained on.
 */
export function fitMlp(
  X: Matrix,
  y: Int32Array,
  K: number,
  opts: MlpOptions = {},
): { model: MlpModel; info: MlpFitInfo } {
  const o = { ...MLP_DEFAULTS, ...opts };
  const seed = opts.seed ?? 0;
  const random = rng(seed ^ 0x5bd1e995);
  const { train, test: val } = stratifiedSplit(y, K, o.validation_split, seed);
  const scaler = fitStandardizer(takeRows(X, train));
  const d = X.cols;
  const H = o.hidden;
  // He init for the ReLU layer, Glorot for the softmax layer (Box–Muller on the seeded generator).
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const W1 = Float32Array.from({ length: d * H }, () => gauss() * Math.sqrt(2 / d));
  const W2 = Float32Array.from({ length: H * K }, () => gauss() * Math.sqrt(2 / (H + K)));
  let model: MlpModel = {
    dims: d,
    hidden: H,
    classes: K,
    mean: scaler.mean,
    scale: scaler.scale,
    W1,
    b1: new Float32Array(H),
    W2,
    b2: new Float32Array(K),
  };
  const Xs = standardized(model, X);
  const grads = [new Float32Array(d * H), new Float32Array(H), new Float32Array(H * K), new Float32Array(K)];
  const adam = new Adam([model.W1, model.b1, model.W2, model.b2], o.lr, o.weight_decay);
  const B = Math.max(1, Math.floor(o.batch_size));
  const H1 = new Float32Array(B * H);
  const P = new Float64Array(B * K);
  const dH = new Float32Array(B * H);
  let best = { model: copy(model), epoch: 0, loss: val.length > 0 ? loss(model, Xs, y, val) : Infinity };
  let epoch = 0;
  for (epoch = 1; epoch <= o.max_epochs; epoch++) {
    const order = shuffle(train.slice(), random);
    for (let s = 0; s < order.length; s += B) {
      const batch = order.slice(s, s + B);
      forward(model, Xs, batch, H1, P);
      backward(model, Xs, y, batch, H1, P, dH, grads);
      adam.step(grads);
    }
    if (val.length === 0) continue;
    const v = loss(model, Xs, y, val);
    if (v < best.loss) best = { model: copy(model), epoch, loss: v };
    else if (epoch - best.epoch >= o.patience) break;
  }
  if (val.length > 0) model = best.model;
  const epochs = Math.min(epoch, o.max_epochs);
  return {
    model,
    info: {
      epochs,
      best_epoch: val.length > 0 ? best.epoch : epochs,
      best_val_loss: val.length > 0 ? best.loss : null,
      val_examples: val.length,
    },
  };
}

/** Gradients of the batch's mean cross-entropy into `grads` ([dW1, db1, dW2, db2]). */
function backward(
  m: MlpModel,
  X: Float32Array,
  y: Int32Array,
  batch: number[],
  H1: Float32Array,
  P: Float64Array,
  dH: Float32Array,
  grads: Float32Array[],
) {
  const { dims: d, hidden: H, classes: K, W2 } = m;
  const [dW1, db1, dW2, db2] = grads as [Float32Array, Float32Array, Float32Array, Float32Array];
  for (const g of grads) g.fill(0);
  const inv = 1 / batch.length;
  batch.forEach((i, r) => {
    const label = y[i] as number;
    for (let h = 0; h < H; h++) dH[r * H + h] = 0;
    for (let k = 0; k < K; k++) {
      const g = ((P[r * K + k] as number) - (k === label ? 1 : 0)) * inv;
      db2[k] = (db2[k] as number) + g;
      for (let h = 0; h < H; h++) {
        const a = H1[r * H + h] as number;
        dW2[h * K + k] = (dW2[h * K + k] as number) + a * g;
        dH[r * H + h] = (dH[r * H + h] as number) + g * (W2[h * K + k] as number);
      }
    }
    for (let h = 0; h < H; h++) {
      if ((H1[r * H + h] as number) <= 0) dH[r * H + h] = 0;
      db1[h] = (db1[h] as number) + (dH[r * H + h] as number);
    }
    for (let j = 0; j < d; j++) {
      const x = X[i * d + j] as number;
      if (x === 0) continue;
      const w = j * H;
      for (let h = 0; h < H; h++) dW1[w + h] = (dW1[w + h] as number) + x * (dH[r * H + h] as number);
    }
  });
}

/** Class probabilities, n × K, for raw (unstandardized) rows. */
export function mlpProba(m: MlpModel, X: Matrix): Float64Array {
  const Xs = standardized(m, X);
  const out = new Float64Array(X.rows * m.classes);
  const B = 256;
  const H1 = new Float32Array(B * m.hidden);
  const P = new Float64Array(B * m.classes);
  for (let s = 0; s < X.rows; s += B) {
    const rows = Array.from({ length: Math.min(B, X.rows - s) }, (_, r) => s + r);
    forward(m, Xs, rows, H1, P);
    out.set(P.subarray(0, rows.length * m.classes), s * m.classes);
  }
  return out;
}
