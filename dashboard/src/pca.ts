// Principal components in the browser, for the evaluation page's 2-D map of embeddings. A few hundred
// vectors of a few hundred dimensions: power iteration on X·(Xᵀ·v) costs O(n·d) per step and never
// forms the d×d covariance, so it stays fast without a linear-algebra library.

export type Pca = {
  /** One [pc1, pc2] per input row, in input order. */
  points: [number, number][];
  /** The two unit directions (length d each). */
  components: [number[], number[]];
  /** The variance along each component (sample variance, n − 1). */
  variances: [number, number];
  /** Share of the total variance each component explains (0 when the data has none). */
  explained: [number, number];
};

const ITERATIONS = 200;
/** Stop when no coordinate of the direction moves more than this between steps. */
const TOLERANCE = 1e-12;

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function normalize(v: number[]): number {
  const n = Math.sqrt(dot(v, v));
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) / n;
  return n;
}

/** v − (v·u)u for each u: keeps the second component orthogonal to the first. */
function orthogonalize(v: number[], against: number[][]): void {
  for (const u of against) {
    const p = dot(v, u);
    for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) - p * (u[i] as number);
  }
}

/** Cᵥ = Xᵀ(X v) / (n − 1) for centered rows X. */
function covTimes(rows: number[][], v: number[]): number[] {
  const out = new Array<number>(v.length).fill(0);
  for (const r of rows) {
    const s = dot(r, v);
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + s * (r[i] as number);
  }
  const denom = Math.max(1, rows.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / denom;
  return out;
}

/** The leading eigenvector of the covariance orthogonal to `found`, and its eigenvalue. */
function leading(rows: number[][], d: number, found: number[][]): { vector: number[]; value: number } {
  // A fixed, uneven start (not random) so the same data always gives the same picture; uneven so it is
  // unlikely to be orthogonal to the answer.
  let v = Array.from({ length: d }, (_, i) => 1 + ((i * 7919) % 13) / 13);
  orthogonalize(v, found);
  if (normalize(v) === 0) return { vector: new Array<number>(d).fill(0), value: 0 };
  let value = 0;
  for (let it = 0; it < ITERATIONS; it++) {
    const w = covTimes(rows, v);
    orthogonalize(w, found);
    const norm = normalize(w);
    if (norm === 0) return { vector: v, value: 0 };
    let change = 0;
    for (let i = 0; i < d; i++) change = Math.max(change, Math.abs((w[i] as number) - (v[i] as number)));
    v = w;
    value = norm;
    if (change < TOLERANCE) break;
  }
  // Signs are arbitrary; make the largest coordinate positive so reruns draw the same map.
  let big = 0;
  for (let i = 1; i < d; i++) if (Math.abs(v[i] as number) > Math.abs(v[big] as number)) big = i;
  if ((v[big] as number) < 0) v = v.map((x) => -x);
  return { vector: v, value };
}

/**
 * The first two principal components of `data` (rows are samples).
 *
 * Args:
 *   data: n rows of d numbers each (n ≥ 1, every row the same length).
 *
 * Returns: each row's coordinates on the two components, the components, their variances and
 * explained shares. A dimension with no variance left gives a zero component (coordinates 0).
 */
export function pca2(data: ArrayLike<number>[]): Pca {
  const n = data.length;
  if (n === 0) throw new Error("pca2: no rows");
  const d = (data[0] as ArrayLike<number>).length;
  if (data.some((r) => r.length !== d)) throw new Error("pca2: rows differ in length");
  const mean = new Array<number>(d).fill(0);
  for (const r of data) for (let i = 0; i < d; i++) mean[i] = (mean[i] as number) + (r[i] as number) / n;
  const rows = data.map((r) => Array.from({ length: d }, (_, i) => (r[i] as number) - (mean[i] as number)));
  let total = 0;
  for (const r of rows) total += dot(r, r);
  total /= Math.max(1, n - 1);
  const first = leading(rows, d, []);
  const second = leading(rows, d, first.value > 0 ? [first.vector] : []);
  // With no variance at all the second direction must not repeat the first.
  const c2 = first.value > 0 ? second.vector : new Array<number>(d).fill(0);
  const v2 = first.value > 0 ? second.value : 0;
  return {
    points: rows.map((r) => [dot(r, first.vector), dot(r, c2)]),
    components: [first.vector, c2],
    variances: [first.value, v2],
    explained: total > 0 ? [first.value / total, v2 / total] : [0, 0],
  };
}

/** At most `max` indexes spread evenly over 0..n−1 (all of them when n ≤ max). */
export function evenSample(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.floor((i * n) / max));
}
