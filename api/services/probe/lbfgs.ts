// Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright, Algorithms 7.4, 3.5, 3.6).
// The objective returns its value and writes the gradient in place, so one pass over the data gives
// both; the line search needs them together anyway. Written as steps (steps.ts): each objective
// evaluation yields its cost, and each iteration its own vector work, so a long fit can give the
// event loop a turn. The vector work counts: with many parameters and few rows (TF-IDF: 200k
// weights, 3200 short texts) the two-loop recursion costs more than the objective, and leaving it
// out made a 4000-text baseline run ~160 ms between turns.
import { JS_WORK, runSync, type Steps } from "./steps";

export type Objective = (x: Float64Array, grad: Float64Array) => number;

export type LbfgsOptions = {
  /** Stop when max |gradient component| <= gtol: scipy's `gtol`, which scikit-learn passes its `tol` as. */
  gtol?: number;
  /** Stop when the relative decrease of f in one step is below ftol (scipy's default factor). */
  ftol?: number;
  maxIter?: number;
  /** History pairs kept (scipy and scikit-learn use 10). */
  memory?: number;
  /** Work (multiply-adds) of one objective evaluation, yielded after each; default: the parameter count. The line search's own vector work is added. */
  cost?: number;
};

export type LbfgsResult = {
  x: Float64Array;
  f: number;
  iterations: number;
  evaluations: number;
  gradNorm: number;
  converged: boolean;
  reason: "gtol" | "ftol" | "max_iter" | "line_search";
};

const C1 = 1e-4;
const C2 = 0.9;

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};
const maxAbs = (a: Float64Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
};

export function minimize(fn: Objective, x0: Float64Array, opts: LbfgsOptions = {}): LbfgsResult {
  return runSync(minimizeSteps(fn, x0, opts));
}

export function* minimizeSteps(fn: Objective, x0: Float64Array, opts: LbfgsOptions = {}): Steps<LbfgsResult> {
  const gtol = opts.gtol ?? 1e-6;
  const ftol = opts.ftol ?? 64 * Number.EPSILON;
  const maxIter = opts.maxIter ?? 1000;
  const m = opts.memory ?? 10;
  const n = x0.length;
  const cost = opts.cost ?? n;

  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = fn(x, g);
  yield cost;
  let evaluations = 1;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  const d = new Float64Array(n);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);

  for (let iter = 0; iter < maxIter; iter++) {
    const gmax = maxAbs(g);
    if (gmax <= gtol) return { x, f, iterations: iter, evaluations, gradNorm: gmax, converged: true, reason: "gtol" };

    // Two-loop recursion: d = -H g, with H0 = (s'y / y'y) I from the newest pair.
    for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
    for (let j = S.length - 1; j >= 0; j--) {
      const a = (rho[j] as number) * dot(S[j] as Float64Array, d);
      alpha[j] = a;
      const y = Y[j] as Float64Array;
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) - a * (y[i] as number);
    }
    if (S.length > 0) {
      const y = Y[S.length - 1] as Float64Array;
      const gamma = 1 / ((rho[S.length - 1] as number) * dot(y, y));
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) * gamma;
    }
    for (let j = 0; j < S.length; j++) {
      const b = (rho[j] as number) * dot(Y[j] as Float64Array, d);
      const s = S[j] as Float64Array;
      const a = alpha[j] as number;
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) + (a - b) * (s[i] as number);
    }
    let dg = dot(d, g);
    if (!(dg < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
      dg = dot(d, g);
    }
    // The recursion's dot products and updates: 4 per pair, ~4 more for the copy, scaling and dg.
    yield JS_WORK * (4 * S.length + 4) * n;
    const step0 = S.length === 0 ? Math.min(1, 1 / Math.sqrt(-dg)) : 1;
    const ls = yield* lineSearch(fn, x, f, d, dg, step0, xNew, gNew, cost);
    evaluations += ls.evaluations;
    if (!ls.ok) {
      return { x, f, iterations: iter, evaluations, gradNorm: gmax, converged: false, reason: "line_search" };
    }
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = (xNew[i] as number) - (x[i] as number);
      y[i] = (gNew[i] as number) - (g[i] as number);
    }
    const fOld = f;
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = ls.f;
    yield JS_WORK * 5 * n;
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(y, y) * dot(s, s))) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    if ((fOld - f) / Math.max(Math.abs(fOld), Math.abs(f), 1) <= ftol) {
      return { x, f, iterations: iter + 1, evaluations, gradNorm: maxAbs(g), converged: true, reason: "ftol" };
    }
  }
  return { x, f, iterations: maxIter, evaluations, gradNorm: maxAbs(g), converged: false, reason: "max_iter" };
}

/** Strong-Wolfe line search along d; on success xOut/gOut hold the accepted point. */
function* lineSearch(
  fn: Objective,
  x: Float64Array,
  f0: number,
  d: Float64Array,
  dg0: number,
  step0: number,
  xOut: Float64Array,
  gOut: Float64Array,
  cost: number,
): Steps<{ ok: boolean; f: number; evaluations: number }> {
  let evaluations = 0;
  function* phi(t: number): Steps<{ f: number; dg: number }> {
    for (let i = 0; i < x.length; i++) xOut[i] = (x[i] as number) + t * (d[i] as number);
    evaluations++;
    const fv = fn(xOut, gOut);
    yield cost + JS_WORK * 2 * x.length;
    return { f: fv, dg: dot(gOut, d) };
  }
  let tPrev = 0;
  let fPrev = f0;
  let dgPrev = dg0;
  let t = step0;
  for (let i = 0; i < 40; i++) {
    const { f, dg } = yield* phi(t);
    if (!Number.isFinite(f) || f > f0 + C1 * t * dg0 || (i > 0 && f >= fPrev)) {
      return yield* zoom(tPrev, fPrev, dgPrev, t, f, dg);
    }
    if (Math.abs(dg) <= -C2 * dg0) return { ok: true, f, evaluations };
    if (dg >= 0) return yield* zoom(t, f, dg, tPrev, fPrev, dgPrev);
    tPrev = t;
    fPrev = f;
    dgPrev = dg;
    t *= 2;
  }
  return { ok: false, f: f0, evaluations };

  function* zoom(
    lo: number,
    fLo: number,
    dgLo: number,
    hi: number,
    fHi: number,
    dgHi: number,
  ): Steps<{ ok: boolean; f: number; evaluations: number }> {
    for (let j = 0; j < 30; j++) {
      let t2 = cubicMin(lo, fLo, dgLo, hi, fHi, dgHi);
      const span = Math.abs(hi - lo);
      // Keep the trial well inside the bracket so it shrinks even when the cubic is poor.
      if (!Number.isFinite(t2) || Math.abs(t2 - lo) < 0.1 * span || Math.abs(t2 - hi) < 0.1 * span) {
        t2 = (lo + hi) / 2;
      }
      const { f, dg } = yield* phi(t2);
      if (!Number.isFinite(f) || f > f0 + C1 * t2 * dg0 || f >= fLo) {
        hi = t2;
        fHi = f;
        dgHi = dg;
      } else {
        if (Math.abs(dg) <= -C2 * dg0) return { ok: true, f, evaluations };
        if (dg * (hi - lo) >= 0) {
          hi = lo;
          fHi = fLo;
          dgHi = dgLo;
        }
        lo = t2;
        fLo = f;
        dgLo = dg;
      }
      if (span < 1e-16) break;
    }
    // The bracket collapsed: accept the best sufficient-decrease point if there is one.
    if (lo > 0 && fLo < f0) {
      const { f } = yield* phi(lo);
      return { ok: true, f, evaluations };
    }
    return { ok: false, f: f0, evaluations };
  }
}

/** Minimiser of the cubic through (a, fa, da) and (b, fb, db); NaN when it has none. */
function cubicMin(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - (3 * (fa - fb)) / (a - b);
  const disc = d1 * d1 - da * db;
  if (!(disc >= 0) || !Number.isFinite(fb)) return Number.NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(disc);
  return b - (b - a) * ((db + d2 - d1) / (db - da + 2 * d2));
}
