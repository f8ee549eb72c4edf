// The comparison's pure parts (api/services/probe/evaluate.ts): scoring a fine-tuned head on an
// evaluation's labels, and which baseline number each kind is measured against.
import { describe, expect, it } from "vitest";
import type { BaselineResult } from "../api/services/probe/baseline";
import { deltaVsBaseline, headResult, resultRows, tableRow } from "../api/services/probe/evaluate";
import { classificationMetrics } from "../api/services/probe/metrics";

const names = ["a", "b"];

describe("evaluation rows", () => {
  it("scores a head by its most probable label among the set's, in the set's label order", () => {
    // Head order differs from the set's sorted order and holds an extra label, "x".
    const head = ["x", "b", "a"];
    const P = [
      [0.9, 0.02, 0.08], // x wins overall; among the set's labels: a
      [0.1, 0.6, 0.3], // b
      [0.2, 0.5, 0.3], // b
    ].flat();
    const r = headResult(P, head, names, ["a", "a", "b"], 7);
    expect(r.kind).toBe("finetuned");
    expect(r.metrics.confusion).toEqual({
      labels: names,
      matrix: [
        [1, 1],
        [0, 1],
      ],
    });
    expect(r.metrics.accuracy).toBeCloseTo(2 / 3, 12);
    expect(r.fit_ms).toBe(7);
  });

  it("measures linear and kNN against the baseline's same probe, MLP and heads against its linear one", () => {
    const m = (acc: number) => ({ ...classificationMetrics([0], [0], ["a"]), accuracy: acc });
    const baseline: BaselineResult = {
      linear: { ...m(0.5), C: 1 },
      knn: { ...m(0.4), k: 5 },
      features: 3,
      fit_ms: 1,
    };
    const results = (["linear", "knn", "mlp", "finetuned"] as const).map((kind) => ({
      kind,
      metrics: m(0.7),
      hyperparameters: kind === "linear" ? { C: 0.1 } : kind === "knn" ? { k: 5 } : { best_epoch: 3 },
      fit_ms: 1,
    }));
    expect(results.map((r) => deltaVsBaseline(r, baseline))).toEqual([0.7 - 0.5, 0.7 - 0.4, 0.7 - 0.5, 0.7 - 0.5]);
    const rows = resultRows("m@1", "embeddings", results, baseline);
    expect(rows.map((r) => [r.kind, r.features])).toEqual([
      ["linear", "embeddings"],
      ["knn", "embeddings"],
      ["mlp", "embeddings"],
      ["finetuned", "head"],
    ]);
    const t = tableRow("m@1", "embeddings", results, baseline, 2);
    expect(t).toMatchObject({
      linear: { C: 0.1 },
      knn: { k: 5 },
      mlp: { best_epoch: 3 },
      finetuned: { accuracy: 0.7 },
    });
    expect(t.timings).toEqual({ embed_ms: 2, fit_ms: 4 });
    expect(resultRows("tfidf", "tfidf", results.slice(0, 2), null).map((r) => r.delta_vs_baseline)).toEqual([
      null,
      null,
    ]);
  });
});
