import { describe, expect, it } from "vitest";
import "../api/services/probe/wasm_module";
import { tfidfBaseline } from "../api/services/probe/baseline";
import { DEFAULT_TEMPERATURE, fitKnn, knnProba } from "../api/services/probe/knn";
import { minimize } from "../api/services/probe/lbfgs";
import {
  argmaxRows,
  crossValidateC,
  fitLinearProbe,
  fitLogReg,
  predictProba,
  takeRows,
} from "../api/services/probe/logreg";
import { fitStandardizer, type Matrix, rng, stratifiedFolds, stratifiedSplit } from "../api/services/probe/matrix";
import { classificationMetrics } from "../api/services/probe/metrics";
import kernel from "../api/services/probe/wasm/logreg_kernel.wasm";
import { denseObjective, useWasmKernel } from "../api/services/probe/wasm_kernel";
import { digits, fortunes, type ReferenceSet } from "./probe_fixtures";
import { referenceObjective, toClassMajor } from "./probe_reference";

const accuracy = (pred: ArrayLike<number>, y: ArrayLike<number>) => {
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) ok++;
  return ok / y.length;
};

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const r = rng(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => r() * 2 - 1) };
}

describe("L-BFGS", () => {
  it("minimises the Rosenbrock function to the documented gradient tolerance", () => {
    const res = minimize(
      (x, g) => {
        const [a, b] = [x[0] as number, x[1] as number];
        g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
        g[1] = 200 * (b - a * a);
        return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
      },
      Float64Array.from([-1.2, 1]),
      { gtol: 1e-8 },
    );
    expect(res.converged).toBe(true);
    expect(res.x[0]).toBeCloseTo(1, 6);
    expect(res.x[1]).toBeCloseTo(1, 6);
  });
});

describe("logistic regression", () => {
  it("computes the gradient of its objective (finite differences)", () => {
    const X = randomMatrix(23, 5, 1);
    const y = Int32Array.from({ length: 23 }, (_, i) => i % 3);
    const f = referenceObjective(X, y, 3, 0.1);
    const theta = Float64Array.from({ length: 5 * 3 + 3 }, (_, i) => Math.sin(i));
    const g = new Float64Array(theta.length);
    f(theta, g);
    const scratch = new Float64Array(theta.length);
    for (let i = 0; i < theta.length; i++) {
      const h = 1e-6;
      const up = Float64Array.from(theta);
      const down = Float64Array.from(theta);
      up[i] = (up[i] as number) + h;
      down[i] = (down[i] as number) - h;
      expect(g[i]).toBeCloseTo((f(up, scratch) - f(down, scratch)) / (2 * h), 6);
    }
  });

  for (const load of [digits, fortunes]) {
    const set: ReferenceSet = load();
    it(`matches scikit-learn's LogisticRegression(lbfgs) on ${set.name} within 0.5 points at every C`, () => {
      const ytr = Int32Array.from(set.trainIdx, (i) => set.y[i] as number);
      const yte = Int32Array.from(set.testIdx, (i) => set.y[i] as number);
      const scaler = fitStandardizer(takeRows(set.X, set.trainIdx));
      const Xtr = scaler.apply(takeRows(set.X, set.trainIdx));
      const Xte = scaler.apply(takeRows(set.X, set.testIdx));
      for (const C of set.grid) {
        const { model, info } = fitLogReg(Xtr, ytr, set.classes, { C });
        expect(info.converged, `C=${C}`).toBe(true);
        const acc = accuracy(argmaxRows(predictProba(model, Xte), set.classes), yte);
        expect(Math.abs(acc - (set.testAccuracyByC[String(C)] as number)), `C=${C}`).toBeLessThanOrEqual(0.005);
      }
      // Same folds: the same CV scores and the same pick.
      const cv = crossValidateC(Xtr, ytr, set.classes, set.foldOfTrain, set.folds, set.grid);
      cv.scores.forEach((s, i) => {
        expect(Math.abs(s - (set.cvScores[i] as number))).toBeLessThanOrEqual(0.005);
      });
      expect(cv.chosenC).toBe(set.chosenC);
      const probe = fitLinearProbe(takeRows(set.X, set.trainIdx), ytr, set.classes, {
        foldOf: set.foldOfTrain,
        folds: set.folds,
        grid: set.grid,
      });
      const acc = accuracy(
        argmaxRows(predictProba(probe.model, probe.scaler.apply(takeRows(set.X, set.testIdx))), set.classes),
        yte,
      );
      console.log(`${set.name}: ts ${acc.toFixed(4)} sklearn ${set.testAccuracy.toFixed(4)} C=${cv.chosenC}`);
      expect(Math.abs(acc - set.testAccuracy)).toBeLessThanOrEqual(0.005);
    });
  }
});

describe("kNN", () => {
  /** The textbook version: every similarity, a full sort, weights exp(sim / T). */
  function naive(train: Matrix, y: Int32Array, K: number, X: Matrix, k: number, T: number) {
    const unit = (m: Matrix, i: number) => {
      const v = Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols));
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const out: number[][] = [];
    for (let q = 0; q < X.rows; q++) {
      const qv = unit(X, q);
      const sims = Array.from({ length: train.rows }, (_, i) => ({
        i,
        s: unit(train, i).reduce((a, x, j) => a + x * (qv[j] as number), 0),
      }));
      sims.sort((a, b) => b.s - a.s || a.i - b.i);
      const votes = new Array<number>(K).fill(0);
      for (const { i, s } of sims.slice(0, k))
        votes[y[i] as number] = (votes[y[i] as number] as number) + Math.exp(s / T);
      const total = votes.reduce((a, b) => a + b, 0);
      out.push(votes.map((v) => v / total));
    }
    return out;
  }

  it("agrees with a naive reference on random data and on the fortunes embeddings", () => {
    const cases: [Matrix, Int32Array, number, Matrix, number, number][] = [
      [
        randomMatrix(200, 16, 2),
        Int32Array.from({ length: 200 }, (_, i) => i % 5),
        5,
        randomMatrix(30, 16, 3),
        20,
        0.07,
      ],
      [randomMatrix(50, 8, 4), Int32Array.from({ length: 50 }, (_, i) => i % 3), 3, randomMatrix(10, 8, 5), 7, 0.5],
    ];
    const f = fortunes();
    cases.push([
      takeRows(f.X, f.trainIdx),
      Int32Array.from(f.trainIdx, (i) => f.y[i] as number),
      f.classes,
      takeRows(f.X, f.testIdx),
      20,
      DEFAULT_TEMPERATURE,
    ]);
    for (const [train, y, K, X, k, T] of cases) {
      const P = knnProba(fitKnn(train, y, K, k, T), X);
      const ref = naive(train, y, K, X, k, T);
      ref.forEach((row, q) => {
        row.forEach((p, c) => {
          expect(P[q * K + c]).toBeCloseTo(p, 9);
        });
      });
    }
  });
});

describe("metrics", () => {
  it("matches scikit-learn's precision_recall_fscore_support, macro F1 and confusion_matrix", () => {
    const m = classificationMetrics([0, 0, 1, 1, 2, 2, 2, 0], [0, 1, 1, 1, 2, 0, 0, 0], ["a", "b", "c", "d"]);
    expect(m.accuracy).toBeCloseTo(5 / 8, 12);
    expect(m.macro_f1).toBeCloseTo(0.46785714285714286, 12);
    expect(m.confusion).toEqual({
      labels: ["a", "b", "c", "d"],
      matrix: [
        [2, 1, 0, 0],
        [0, 2, 0, 0],
        [2, 0, 1, 0],
        [0, 0, 0, 0],
      ],
    });
    expect(m.per_class.a).toEqual({ precision: 0.5, recall: 2 / 3, f1: expect.closeTo(0.5714285714, 9), support: 3 });
    expect(m.per_class.b?.precision).toBeCloseTo(2 / 3, 12);
    expect(m.per_class.c).toMatchObject({ precision: 1, recall: 1 / 3, f1: 0.5, support: 3 });
    expect(m.per_class.d).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
  });
});

describe("splits", () => {
  it("are stratified and reproducible from the seed", () => {
    const y = Int32Array.from({ length: 103 }, (_, i) => (i < 60 ? 0 : i < 90 ? 1 : 2));
    const a = stratifiedSplit(y, 3, 0.2, 7);
    expect(stratifiedSplit(y, 3, 0.2, 7)).toEqual(a);
    expect(stratifiedSplit(y, 3, 0.2, 8)).not.toEqual(a);
    const perClass = (idx: number[]) => [0, 1, 2].map((c) => idx.filter((i) => y[i] === c).length);
    expect(perClass(a.test)).toEqual([12, 6, 3]);
    expect([...a.train, ...a.test].sort((p, q) => p - q)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    const folds = stratifiedFolds(y, 3, 5, 7);
    for (let f = 0; f < 5; f++) {
      const inFold = [...folds.keys()].filter((i) => folds[i] === f);
      for (const c of [0, 1, 2]) expect(inFold.filter((i) => y[i] === c).length).toBeGreaterThanOrEqual(2);
    }
  });
});

describe("TF-IDF baseline", () => {
  it("is in the range of scikit-learn's TfidfVectorizer + LogisticRegression on the fortunes split", () => {
    const f = fortunes();
    const texts = f.texts as string[];
    const pick = (idx: number[]) => ({
      texts: idx.map((i) => texts[i] as string),
      labels: idx.map((i) => f.labelNames[f.y[i] as number] as string),
    });
    const b = tfidfBaseline(pick(f.trainIdx), pick(f.testIdx), {});
    console.log(
      `tfidf: ts linear ${b.linear.accuracy.toFixed(4)} (C=${b.linear.C}) knn ${b.knn.accuracy.toFixed(4)}; sklearn C=10 ${f.tfidfAccuracy}`,
    );
    // Not the same C choice (ours is cross-validated), so a loose band: 72 test quotes, 1 = 1.4 points.
    expect(Math.abs(b.linear.accuracy - (f.tfidfAccuracy as number))).toBeLessThan(0.1);
    expect(b.knn.accuracy).toBeGreaterThan(0.25);
  });
});

/** The WASM kernel's objective and gradient against the plain reference, to 12 digits. */
function expectMatchesReference(
  n: number,
  d: number,
  K: number,
  seed: number,
  lambda: number,
  opts?: { maxResidentBytes?: number; chunkBytes?: number },
) {
  const X = randomMatrix(n, d, seed);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % K);
  const thetaRef = Float64Array.from({ length: d * K + K }, (_, i) => Math.cos(i) * 0.3);
  // The same parameters, class-major.
  const theta = toClassMajor(thetaRef, d, K);
  const gRef = new Float64Array(theta.length);
  const gWasm = new Float64Array(theta.length);
  const fRef = referenceObjective(X, y, K, lambda)(thetaRef, gRef);
  const fWasm = denseObjective(X, y, K, lambda, opts)(theta, gWasm);
  expect(fWasm).toBeCloseTo(fRef, 12);
  for (let j = 0; j < d; j++)
    for (let k = 0; k < K; k++) expect(gWasm[k * d + j]).toBeCloseTo(gRef[j * K + k] as number, 12);
  for (let k = 0; k < K; k++) expect(gWasm[d * K + k]).toBeCloseTo(gRef[d * K + k] as number, 12);
}

describe("WASM SIMD kernel", () => {
  it("computes the reference objective and gradient (odd K, rows not a multiple of 4)", () => {
    for (const [n, d, K] of [
      [23, 7, 3],
      [8, 5, 2],
      [1, 3, 5],
    ] as const) {
      expectMatchesReference(n, d, K, n, 0.3);
    }
  });

  it("computes the reference objective and gradient (odd sizes padded)", () => {
    for (const [n, d, K] of [
      [23, 7, 3],
      [8, 6, 2],
      [1, 3, 5],
      [64, 33, 10],
    ] as const) {
      expectMatchesReference(n, d, K, n + 100, 0.2);
    }
  });

  it("streams X in row blocks when it is over the resident limit, with the same result", () => {
    // Nothing resident: every evaluation copies X in by blocks (rows of 10 padded dims = 80 bytes),
    // the last one short: 4 MiB (all rows at once), 4 rows, 8 rows.
    for (const chunkBytes of [undefined, 320, 640]) {
      expectMatchesReference(23, 9, 3, 7, 0.1, { maxResidentBytes: 0, chunkBytes });
      expectMatchesReference(1030, 9, 4, 8, 0.1, { maxResidentBytes: 0, chunkBytes });
    }
  });

  it("says how to load the kernel when none was handed over", () => {
    useWasmKernel(null);
    try {
      expect(() => denseObjective(randomMatrix(4, 2, 1), new Int32Array(4), 2, 0.1)).toThrow(/wasm_module/);
    } finally {
      useWasmKernel(kernel);
    }
  });
});
