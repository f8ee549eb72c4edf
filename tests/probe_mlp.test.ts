import { describe, expect, it } from "vitest";
// The MLP hidden layer and the linear probe run in the dense WASM kernel.
import "../api/services/probe/wasm_module";
import { argmaxRows, fitLinearProbe, predictProba, takeRows } from "../api/services/probe/logreg";
import { type Matrix, rng, stratifiedFolds } from "../api/services/probe/matrix";
import { fitMlp, mlpProba } from "../api/services/probe/mlp";
import { digits } from "./probe_fixtures";

const rows = (X: Matrix, idx: number[]) => takeRows(X, idx);
const accuracy = (P: Float64Array, K: number, y: ArrayLike<number>) => {
  const pred = argmaxRows(P, K);
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === y[i]) ok++;
  return ok / pred.length;
};

describe("MLP probe", () => {
  it("reaches scikit-learn's linear accuracy on digits and stops early on the validation split", () => {
    const set = digits();
    const Xtr = rows(set.X, set.trainIdx);
    const ytr = Int32Array.from(set.trainIdx, (i) => set.y[i] as number);
    const yte = Int32Array.from(set.testIdx, (i) => set.y[i] as number);
    const { model, info } = fitMlp(Xtr, ytr, 10, { hidden: 64, max_epochs: 60, seed: 0 });
    const acc = accuracy(mlpProba(model, rows(set.X, set.testIdx)), 10, yte);
    // scikit-learn's tuned logistic regression on this split: 0.9694 (tests/fixtures/probe/README.md).
    expect(acc).toBeGreaterThanOrEqual(set.testAccuracy - 0.01);
    expect(info.val_examples).toBeGreaterThan(100);
    expect(info.best_epoch).toBeGreaterThan(0);
    expect(info.best_epoch).toBeLessThanOrEqual(info.epochs);
    expect(Number.isFinite(info.best_val_loss as number)).toBe(true);
  });

  it("is reproducible from its seed", () => {
    const set = digits();
    const X = rows(set.X, set.trainIdx.slice(0, 400));
    const y = Int32Array.from(set.trainIdx.slice(0, 400), (i) => set.y[i] as number);
    const a = fitMlp(X, y, 10, { hidden: 16, max_epochs: 5, seed: 3 });
    const b = fitMlp(X, y, 10, { hidden: 16, max_epochs: 5, seed: 3 });
    const c = fitMlp(X, y, 10, { hidden: 16, max_epochs: 5, seed: 4 });
    expect(Array.from(a.model.W1)).toEqual(Array.from(b.model.W1));
    expect(Array.from(a.model.W1)).not.toEqual(Array.from(c.model.W1));
  });

  it("separates classes no linear probe can (XOR of two coordinates)", () => {
    // Class = sign(x0) XOR sign(x1): the textbook case a hidden layer exists for.
    const random = rng(7);
    const n = 800;
    const data = new Float64Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const a = random() * 2 - 1;
      const b = random() * 2 - 1;
      data[2 * i] = a;
      data[2 * i + 1] = b;
      y[i] = a > 0 !== b > 0 ? 1 : 0;
    }
    const X = { rows: n, cols: 2, data };
    const linear = fitLinearProbe(X, y, 2, {
      foldOf: stratifiedFolds(y, 2, 3, 0),
      folds: 3,
      grid: [1],
      tol: 1e-6,
      maxIter: 200,
    });
    const linAcc = accuracy(predictProba(linear.model, linear.scaler.apply(X)), 2, y);
    const { model } = fitMlp(X, y, 2, { hidden: 32, max_epochs: 200, patience: 30, lr: 1e-2, seed: 0 });
    const mlpAcc = accuracy(mlpProba(model, X), 2, y);
    expect(linAcc).toBeLessThan(0.7);
    expect(mlpAcc).toBeGreaterThan(0.93);
  });
});
