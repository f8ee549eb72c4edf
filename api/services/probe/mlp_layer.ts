// The MLP probe's hidden layer on the dense WASM SIMD kernel (wasm/logreg_kernel.wat): its two
// products are the logistic objective's with the hidden units in the place of the classes —
//   scores: Z = X_batch · W1ᵀ        (B × H; W1 is hidden-major, H × d)
//   gradw:  dW1 = dZᵀ · X_batch      (H × d)
// They are all but a few percent of an MLP epoch's work (d·H per example each way, against H·K
// for the output layer), and the kernel runs them several times faster than a JS loop.
import { type KernelExports, kernelInstance } from "./wasm_kernel";

const even = (v: number) => v + (v & 1);
const four = (v: number) => (v + 3) & ~3;

/**
 * Kernel memory for one hidden layer, float64, padded as the kernel needs (rows to a multiple of
 * 4, dims and units to even; padding stays zero): a block of input rows, W1, the scores Z (which
 * the backward pass overwrites with dZ) and the gradient dW1.
 */
export class HiddenLayer {
  readonly dp: number;
  readonly hp: number;
  /** Hidden-major weights (hp × dp): trained in place, so the optimizer updates kernel memory. */
  readonly W: Float64Array;
  /** Scores of the loaded rows (rows × hp); holds dZ after `setGrad`. */
  readonly Z: Float64Array;
  /** dW1 of the last `gradient` call (hp × dp). */
  readonly G: Float64Array;
  private readonly X: Float64Array;
  private readonly k: KernelExports;
  private readonly offsets: { x: number; w: number; z: number; g: number };
  private rows = 0;

  constructor(
    readonly dims: number,
    readonly hidden: number,
    /** Most rows one call takes. */
    readonly capacity: number,
  ) {
    this.dp = even(dims);
    this.hp = even(hidden);
    const cap = four(capacity);
    const w = 0;
    const x = w + this.hp * this.dp * 8;
    const z = x + cap * this.dp * 8;
    const g = z + cap * this.hp * 8;
    const total = g + this.hp * this.dp * 8;
    this.k = kernelInstance();
    const pages = Math.ceil(total / 65536) - this.k.memory.buffer.byteLength / 65536;
    if (pages > 0) this.k.memory.grow(pages);
    // Views are taken after the one grow: growing detaches the old buffer.
    const mem = new Float64Array(this.k.memory.buffer);
    this.W = mem.subarray(w / 8, x / 8);
    this.X = mem.subarray(x / 8, z / 8);
    this.Z = mem.subarray(z / 8, g / 8);
    this.G = mem.subarray(g / 8, total / 8);
    this.offsets = { x, w, z, g };
  }

  /** Copies hidden-major float32 weights (hidden × dims) in. */
  setWeights(W1: Float32Array) {
    for (let h = 0; h < this.hidden; h++) {
      for (let j = 0; j < this.dims; j++) this.W[h * this.dp + j] = W1[h * this.dims + j] as number;
    }
  }

  /** The weights as float32, hidden × dims (the stored layout). */
  weights(): Float32Array {
    const out = new Float32Array(this.hidden * this.dims);
    for (let h = 0; h < this.hidden; h++) out.set(this.W.subarray(h * this.dp, h * this.dp + this.dims), h * this.dims);
    return out;
  }

  /** Loads `rows` of X (n × dims, row-major) and fills Z with their scores, `rows.length` × hp. */
  scores(X: Float32Array, rows: ArrayLike<number>) {
    const { dims: d, dp } = this;
    const n = rows.length;
    if (n > this.capacity) throw new Error(`HiddenLayer: ${n} rows, capacity ${this.capacity}`);
    for (let r = 0; r < n; r++) {
      const i = rows[r] as number;
      this.X.set(X.subarray(i * d, (i + 1) * d), r * dp);
    }
    // Padding rows: their scores are never read, and their dZ is zeroed in `gradient`.
    const rp = four(n);
    this.X.fill(0, n * dp, rp * dp);
    this.rows = n;
    this.k.scores(this.offsets.x, this.offsets.w, this.offsets.z, rp, dp, this.hp);
  }

  /** dW1 into G from dZ written into Z (rows × hp) for the rows of the last `scores` call. */
  gradient() {
    const rp = four(this.rows);
    this.Z.fill(0, this.rows * this.hp, rp * this.hp);
    this.G.fill(0);
    this.k.gradw(this.offsets.x, this.offsets.z, this.offsets.g, rp, this.dp, this.hp);
  }
}
