// The MLP probe over HTTP (issue 18): create, stored weights, predict from them, option checks
// that name the field; and an evaluation that compares linear and MLP probes row by row.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { fitProbe, MAX_MLP_WEIGHTS } from "../api/services/probe/fit";
import { importFixture } from "./fixture";
import { api, expectProblem, newTenant } from "./helpers";
import { afterAccepted } from "./poll";
import { fortunes } from "./probe_fixtures";

type Metrics = { accuracy: number; macro_f1: number; confusion: { labels: string[]; matrix: number[][] } };
type Probe = {
  id: string;
  kind: string;
  labels: string[];
  metrics: Metrics;
  n_train: number;
  n_test: number;
  hyperparameters: Record<string, unknown>;
};
type Row = {
  model: string;
  features: string;
  kind: string;
  accuracy: number;
  macro_f1: number;
  confusion: Metrics["confusion"] | null;
  delta_vs_baseline: number | null;
  hyperparameters: Record<string, unknown>;
};
type Evaluation = {
  id: string;
  status: string;
  kinds: string[];
  n_test: number;
  rows: Row[];
  table: {
    name: string;
    linear?: { accuracy: number };
    knn?: unknown;
    mlp?: { accuracy: number; best_epoch: number };
  }[];
};

// 360 fortune quotes in 4 categories (tests/fixtures/probe/README.md).
const set = fortunes();
const examples = (set.texts as string[]).map((input, i) => ({ input, label: set.labelNames[set.y[i] as number] }));
const train = examples.filter((_, i) => i % 4 !== 0);
const test = examples.filter((_, i) => i % 4 === 0);

async function setup() {
  const t = await newTenant(["train", "probe"]);
  await importFixture(t.secret, "tiny");
  return t;
}

const post = (key: string, path: string, json: unknown) => api(path, { method: "POST", key, json });
const sum = (m: number[][]) => m.flat().reduce((a, b) => a + b, 0);

describe("MLP probes over HTTP", () => {
  it("fits an MLP probe, records its stopping epoch, stores its weights and predicts from them", async () => {
    const { secret, tenantId } = await setup();
    const res = await post(secret, "/v1/probes", { model: "tiny@1", kind: "mlp", train, test });
    expect(res.status, await res.clone().text()).toBe(201);
    const p = await res.json<Probe>();
    expect(p).toMatchObject({ kind: "mlp", labels: ["computers", "food", "law", "love"], n_train: 270, n_test: 90 });
    // Chance is 25%; the linear probe on these embeddings gets ~68% (fortunes.json).
    expect(p.metrics.accuracy).toBeGreaterThan(0.4);
    expect(sum(p.metrics.confusion.matrix)).toBe(90);
    const h = p.hyperparameters;
    expect(h).toMatchObject({ hidden: 256, max_epochs: 30, patience: 8, validation_split: 0.1, seed: 0 });
    expect(h.val_examples).toBe(28);
    expect(h.best_epoch as number).toBeGreaterThan(0);
    expect(h.best_epoch as number).toBeLessThanOrEqual(h.epochs as number);
    expect(h.epochs as number).toBeLessThanOrEqual(30);
    expect(Number.isFinite(h.best_val_loss)).toBe(true);

    const obj = await env.ARTIFACTS.get(`probes/${tenantId}/${p.id}/weights.json`);
    const w = (await (obj as R2ObjectBody).json()) as Record<string, unknown>;
    expect(w).toMatchObject({ format: "selfsup.probe/v1", kind: "mlp", hidden: 256, dims: set.X.cols });
    const floats = (f: string) => atob((w[f] as { f32: string }).f32).length / 4;
    expect(floats("W1")).toBe(256 * set.X.cols);
    expect(floats("W2")).toBe(256 * 4);

    // The stored weights reproduce the test metrics (the same cached embeddings).
    const pred = await post(secret, `/v1/probes/${p.id}/predict`, { input: test.map((e) => e.input) });
    expect(pred.status, await pred.clone().text()).toBe(200);
    const out = await pred.json<{ data: { label: string; probabilities: Record<string, number> }[] }>();
    for (const d of out.data) expect(Object.values(d.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const right = out.data.filter((d, i) => d.label === test[i]?.label).length;
    expect(right / test.length).toBeCloseTo(p.metrics.accuracy, 12);

    // Same seed, same probe; options reach the fit.
    const again = await (await post(secret, "/v1/probes", { model: "tiny@1", kind: "mlp", train, test })).json<Probe>();
    expect(again.metrics).toEqual(p.metrics);
    const small = await post(secret, "/v1/probes", {
      model: "tiny@1",
      kind: "mlp",
      train,
      test,
      options: { hidden: 16, max_epochs: 3, validation_split: 0, seed: 2 },
    });
    expect(small.status, await small.clone().text()).toBe(201);
    expect((await small.json<Probe>()).hyperparameters).toMatchObject({
      hidden: 16,
      epochs: 3,
      best_epoch: 3,
      best_val_loss: null,
      val_examples: 0,
    });
  });

  it("refuses bad MLP options with a 400 naming the field", async () => {
    const { secret } = await setup();
    const bad: [Record<string, unknown>, string][] = [
      [{ hidden: 0 }, "options.hidden"],
      [{ hidden: 4096 }, "options.hidden"],
      [{ max_epochs: 1000 }, "options.max_epochs"],
      [{ patience: 0 }, "options.patience"],
      [{ lr: -1 }, "options.lr"],
      [{ batch_size: 2.5 }, "options.batch_size"],
      [{ weight_decay: -0.1 }, "options.weight_decay"],
      [{ validation_split: 0.9 }, "options.validation_split"],
    ];
    for (const [options, path] of bad) {
      const p = await expectProblem(
        await post(secret, "/v1/probes", { model: "tiny", kind: "mlp", train, options }),
        400,
      );
      expect(
        p.errors?.map((e) => e.path),
        JSON.stringify(options),
      ).toContain(path);
    }
    const p = await expectProblem(await post(secret, "/v1/probes", { model: "tiny", kind: "mlpp", train }), 400);
    expect(p.errors?.[0]?.path).toBe("kind");
  });

  it("refuses an MLP too large for one request, naming the option to lower", () => {
    const labels = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 ? "a" : "b"));
    const wide = { X: { rows: 4, cols: 2048, data: new Float64Array(4 * 2048) }, labels: labels(4) };
    expect(() => fitProbe("mlp", wide, wide, { hidden: 1024 })).toThrow(/options\.hidden.*hidden <= 512/);
    expect(MAX_MLP_WEIGHTS).toBe(2048 * 512);
    const rows = 4096;
    const long = { X: { rows, cols: 1024, data: new Float64Array(rows * 1024) }, labels: labels(rows) };
    expect(() => fitProbe("mlp", long, wide, { hidden: 1024, max_epochs: 100 })).toThrow(
      /options\.max_epochs.*max_epochs <= 18/,
    );
  });

  it("compares linear and MLP probes per (model, kind) next to the baseline", async () => {
    const { secret } = await setup();
    const res = await post(secret, "/v1/evaluations", {
      models: ["tiny@1"],
      data: examples,
      test: { split: 0.25, seed: 1 },
      kinds: ["linear", "mlp"],
      options: { hidden: 64, max_epochs: 20 },
    });
    const e = await afterAccepted<Evaluation>(res, (id) => api(`/v1/evaluations/${id}`, { key: secret }));
    expect(e.status, JSON.stringify(e)).toBe("succeeded");
    expect(e.kinds).toEqual(["linear", "mlp"]);
    expect(e.rows.map((r) => [r.model, r.features, r.kind])).toEqual([
      ["tiny@1", "embeddings", "linear"],
      ["tiny@1", "embeddings", "mlp"],
      ["tfidf", "tfidf", "linear"],
      ["tfidf", "tfidf", "knn"],
    ]);
    const [linear, mlp, base] = e.rows as [Row, Row, Row];
    for (const r of e.rows) {
      expect(sum(r.confusion?.matrix ?? [])).toBe(e.n_test);
      expect(r.confusion?.labels).toEqual(["computers", "food", "law", "love"]);
    }
    expect(mlp.accuracy).toBeGreaterThan(0.4);
    expect(mlp.hyperparameters).toMatchObject({ hidden: 64 });
    expect(mlp.hyperparameters.best_epoch as number).toBeLessThanOrEqual(mlp.hyperparameters.epochs as number);
    // An MLP (like a fine-tuned head) is measured against the baseline's linear probe.
    expect(mlp.delta_vs_baseline).toBeCloseTo(mlp.accuracy - base.accuracy, 12);
    expect(linear.delta_vs_baseline).toBeCloseTo(linear.accuracy - base.accuracy, 12);
    expect(base.delta_vs_baseline).toBeNull();
    // The summary table holds the same numbers, one row per model, with only the kinds run.
    const [row] = e.table;
    expect(row?.linear?.accuracy).toBe(linear.accuracy);
    expect(row?.mlp).toEqual({
      accuracy: mlp.accuracy,
      macro_f1: mlp.macro_f1,
      best_epoch: mlp.hyperparameters.best_epoch,
    });
    expect(row?.knn).toBeUndefined();
    expect(await (await api(`/v1/evaluations/${e.id}`, { key: secret })).json()).toEqual(e);

    for (const kinds of [[], ["linear", "linear"], ["svm"]]) {
      const p = await expectProblem(
        await post(secret, "/v1/evaluations", { models: ["tiny"], data: examples, kinds }),
        400,
      );
      expect(p.errors?.[0]?.path, JSON.stringify(kinds)).toMatch(/^kinds/);
    }
  });

  it("shows an evaluation stored before rows existed as rows of its table", async () => {
    const { tenantId, secret } = await setup();
    const cell = { accuracy: 0.5, macro_f1: 0.4 };
    const results = {
      labels: ["a", "b"],
      n_train: 8,
      n_test: 2,
      split: null,
      table: [
        {
          name: "tiny@1",
          features: "embeddings",
          linear: { ...cell, C: 1 },
          knn: { ...cell, k: 5 },
          delta_vs_baseline: { linear: 0.1, knn: 0 },
          timings: { embed_ms: 1, fit_ms: 1 },
        },
      ],
      baseline: { kind: "tfidf", features: 10 },
    };
    await env.DB.prepare("insert into evaluations (id, tenant_id, model_refs, results) values (?, ?, ?, ?)")
      .bind("evl_old", tenantId, JSON.stringify(["tiny@1"]), JSON.stringify(results))
      .run();
    const e = await (await api("/v1/evaluations/evl_old", { key: secret })).json<Evaluation>();
    expect(e.kinds).toEqual(["linear", "knn"]);
    expect(e.rows).toEqual([
      {
        model: "tiny@1",
        features: "embeddings",
        kind: "linear",
        ...cell,
        confusion: null,
        delta_vs_baseline: 0.1,
        hyperparameters: { C: 1 },
      },
      {
        model: "tiny@1",
        features: "embeddings",
        kind: "knn",
        ...cell,
        confusion: null,
        delta_vs_baseline: 0,
        hyperparameters: { k: 5 },
      },
    ]);
  });
});
