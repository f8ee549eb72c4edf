// Dense row-major matrices and the small helpers the probes share. Float64 throughout: the fits are
// compared against scikit-learn's float64 solver, and a probe set is small enough to afford it.

export type Matrix = { rows: number; cols: number; data: Float64Array };

export function fromRows(rows: ArrayLike<ArrayLike<number>>, cols?: number): Matrix {
  const d = cols ?? (rows.length > 0 ? (rows[0] as ArrayLike<number>).length : 0);
  const data = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as ArrayLike<number>;
    if (r.length !== d) throw new Error(`row ${i} has ${r.length} values, expected ${d}`);
    for (let j = 0; j < d; j++) data[i * d + j] = r[j] as number;
  }
  return { rows: rows.length, cols: d, data };
}

export type Standardizer = { mean: Float64Array; scale: Float64Array; apply(X: Matrix): Matrix };

/**
 * Per-feature mean and population standard deviation (scikit-learn's StandardScaler); constant
 * features get scale 1 so they map to 0 instead of NaN.
 */
export function fitStandardizer(X: Matrix): Standardizer {
  const { rows: n, cols: d, data } = X;
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (data[i * d + j] as number);
  for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) / Math.max(n, 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const c = (data[i * d + j] as number) - (mean[j] as number);
      scale[j] = (scale[j] as number) + c * c;
    }
  }
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt((scale[j] as number) / Math.max(n, 1));
    scale[j] = s > 1e-12 * Math.max(1, Math.abs(mean[j] as number)) ? s : 1;
  }
  return standardizer(mean, scale);
}

export function standardizer(mean: Float64Array, scale: Float64Array): Standardizer {
  return {
    mean,
    scale,
    apply(X: Matrix): Matrix {
      const d = X.cols;
      const out = new Float64Array(X.data.length);
      for (let i = 0; i < X.rows; i++) {
        for (let j = 0; j < d; j++) {
          out[i * d + j] = ((X.data[i * d + j] as number) - (mean[j] as number)) / (scale[j] as number);
        }
      }
      return { rows: X.rows, cols: d, data: out };
    },
  };
}

/** mulberry32: a tiny seeded PRNG, so splits and folds are reproducible from `seed`. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** Indices grouped by class, each group shuffled by the seeded generator. */
function shuffledByClass(y: ArrayLike<number>, K: number, random: () => number): number[][] {
  const groups: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < y.length; i++) (groups[y[i] as number] as number[]).push(i);
  return groups.map((g) => shuffle(g, random));
}

/**
 * Stratified hold-out: from each class, round(fraction × its size) examples (at least one when the
 * class has two or more) go to test. Returned index lists are sorted.
 */
export function stratifiedSplit(y: ArrayLike<number>, K: number, fraction: number, seed: number) {
  const random = rng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const g of shuffledByClass(y, K, random)) {
    let t = Math.round(fraction * g.length);
    if (t === 0 && g.length >= 2 && fraction > 0) t = 1;
    if (t >= g.length) t = g.length - 1;
    test.push(...g.slice(0, t));
    train.push(...g.slice(t));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** Stratified k-fold: each class's shuffled examples are dealt round-robin to the folds. */
export function stratifiedFolds(y: ArrayLike<number>, K: number, folds: number, seed: number): Int32Array {
  const random = rng(seed ^ 0x9e3779b9);
  const foldOf = new Int32Array(y.length);
  let next = 0;
  for (const g of shuffledByClass(y, K, random)) {
    for (const i of g) {
      foldOf[i] = next;
      next = (next + 1) % folds;
    }
  }
  return foldOf;
}
