// The fits as steps (api/services/probe/steps.ts): driven with turns of the event loop they give
// exactly the numbers of the straight-through fit (scikit-learn parity is tested on that one), and
// they do give the event loop turns while they run.
import { describe, expect, it } from "vitest";
import { fitProbe, fitProbeAsync, fitProbeSteps, PROBE_KINDS } from "../api/services/probe/fit";
import { fitLogRegSteps } from "../api/services/probe/logreg";
import { rng } from "../api/services/probe/matrix";
import type { Csr } from "../api/services/probe/sparse";
import { JS_WORK, runSync, runYielding, type Steps } from "../api/services/probe/steps";
import { fitTfidf, fitTfidfSteps } from "../api/services/probe/tfidf";

/** Three Gaussian blobs in 48 dims, seeded: enough work for many L-BFGS iterations and MLP batches. */
function blobs(n: number, seed: number) {
  const random = rng(seed);
  const d = 48;
  const data = new Float64Array(n * d);
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels.push(`c${c}`);
    for (let j = 0; j < d; j++) data[i * d + j] = (j % 3 === c ? 0.8 : 0) + (random() - 0.5) * 2;
  }
  return { X: { rows: n, cols: d, data }, labels };
}

const train = blobs(450, 1);
const test = blobs(150, 2);
const options = { hidden: 32, max_epochs: 12 };
const withoutTime = ({ fit_ms: _, ...rest }: { fit_ms: number }) => rest;

describe("fits as steps", () => {
  it("give the straight-through fit's numbers for every kind", async () => {
    for (const kind of PROBE_KINDS) {
      const straight = fitProbe(kind, train, test, options);
      const turned = await fitProbeAsync(kind, train, test, options);
      expect(withoutTime(turned), kind).toEqual(withoutTime(straight));
    }
  });

  it("let timers run while they fit", async () => {
    for (const kind of PROBE_KINDS) {
      let turns = 0;
      let fitting = true;
      const tick = () => {
        if (!fitting) return;
        turns++;
        setTimeout(tick, 0);
      };
      setTimeout(tick, 0);
      await runYielding(fitProbeSteps(kind, train, test, options), 200_000);
      fitting = false;
      expect(turns, kind).toBeGreaterThan(3);
    }
    // Straight through, no timer gets a turn.
    let ran = false;
    setTimeout(() => {
      ran = true;
    }, 0);
    fitProbe("linear", train, test, options);
    expect(ran).toBe(false);
  });
});

/** Drives `steps` straight through, keeping every amount of work it yielded. */
function yieldsOf<T>(steps: Steps<T>): { value: T; yields: number[] } {
  const yields: number[] = [];
  for (;;) {
    const r = steps.next();
    if (r.done) return { value: r.value, yields };
    yields.push(r.value);
  }
}

describe("work accounting (what decides when a background fit gives way)", () => {
  it("counts L-BFGS's own vector work, which dominates a wide sparse fit", () => {
    // 40 short rows over 6000 columns, like TF-IDF of a few texts: 18k weights, 120 nonzeros.
    const random = rng(3);
    const rows = 40;
    const cols = 6000;
    const indptr = new Int32Array(rows + 1);
    const indices: number[] = [];
    for (let i = 0; i < rows; i++) {
      indices.push(i % 3, 3 + Math.floor(random() * (cols - 3)), 3 + Math.floor(random() * (cols - 3)));
      indptr[i + 1] = indices.length;
    }
    const X: Csr = {
      rows,
      cols,
      indptr,
      indices: Int32Array.from(indices),
      values: new Float64Array(indices.length).fill(0.5),
    };
    const y = Int32Array.from({ length: rows }, (_, i) => i % 3);
    const { value: fit, yields } = yieldsOf(fitLogRegSteps(X, y, 3, { C: 10, maxIter: 30 }));
    const params = cols * 3 + 3;
    const total = yields.reduce((a, b) => a + b, 0);
    expect(fit.info.iterations).toBeGreaterThan(3);
    // Each iteration updates and dots every weight several times (the two-loop recursion, the line
    // search, s and y); counting only the rows' multiply-adds gave ~2k per evaluation here.
    expect(total).toBeGreaterThan(fit.info.iterations * 8 * params);
    // And it is spread out: no single yield stands for more than one recursion over the most
    // history kept (defaultMemory: 50 pairs here), i.e. one iteration's vector work.
    expect(Math.max(...yields)).toBeLessThanOrEqual(JS_WORK * (4 * 50 + 4) * params);
  });

  it("fits and applies TF-IDF text by text, to the same numbers as straight through", () => {
    const texts = ["the whale surfaced", "a white whale", "the sea was calm", "calm seas and a whale"];
    const { value: tfidf, yields } = yieldsOf(fitTfidfSteps(texts));
    expect(yields).toHaveLength(texts.length);
    const { value: X, yields: perText } = yieldsOf(tfidf.transformSteps(texts));
    expect(perText).toHaveLength(texts.length);
    const straight = fitTfidf(texts);
    expect([...straight.vocabulary]).toEqual([...tfidf.vocabulary]);
    expect(runSync(straight.transformSteps(texts))).toEqual(X);
    expect(straight.transform(texts)).toEqual(X);
  });
});
