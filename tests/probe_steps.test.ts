// The fits as steps (api/services/probe/steps.ts): driven with turns of the event loop they give
// exactly the numbers of the straight-through fit (scikit-learn parity is tested on that one), and
// they do give the event loop turns while they run.
import { describe, expect, it } from "vitest";
import { fitProbe, fitProbeAsync, fitProbeSteps, PROBE_KINDS } from "../api/services/probe/fit";
import { rng } from "../api/services/probe/matrix";
import { runYielding } from "../api/services/probe/steps";

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
