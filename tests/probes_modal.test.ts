// Probes and evaluations on image and time-series models, end to end in workerd: the fixture
// encoders (tests/fixtures/tiny-image-encoder: an MAE ViT on sklearn digits; tiny-series-encoder:
// a masked-patch Transformer on ItalyPowerDemand), probe sets uploaded as datasets, inline inputs
// in the /v1/embeddings forms, and the raw-feature baselines of decision 0005.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { readySet } from "./dataset_upload";
import italyProbe from "./fixtures/series/italy-power-probe.jsonl?raw";
import italyCsv from "./fixtures/series/italy-power-small.csv?raw";
import { api, expectProblem, newTenant } from "./helpers";
import { encodeGreyPng, fashionImages, heldOutDigits, makeIdx, makeZip } from "./image_sets";
import { importEncoder, toBase64 } from "./modal_fixture";
import { afterAccepted } from "./poll";

type Metrics = { accuracy: number; macro_f1: number };
type Probe = {
  id: string;
  model: string;
  labels: string[];
  metrics: Metrics;
  n_train: number;
  n_test: number;
  embeddings: { cached: number; embedded: number };
  train_dataset: string | null;
};
type Row = {
  name: string;
  features: string;
  linear: Metrics & { C: number };
  knn: Metrics & { k: number };
  delta_vs_baseline: { linear: number; knn: number } | null;
};
type Evaluation = { n_train: number; n_test: number; table: Row[]; baseline: { kind: string; features: number } };
type Prediction = { data: { index: number; label: string; probabilities: Record<string, number> }[] };

const enc = new TextEncoder();
const italy = italyProbe
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l) as { values: number[]; label: string });

let key = "";
beforeAll(async () => {
  key = (await newTenant(["admin"])).secret;
  await importEncoder(key, "tiny-image-encoder", "digits-vit");
  await importEncoder(key, "tiny-series-encoder", "power");
});

const post = async <T>(path: string, json: unknown, status = 201): Promise<T> => {
  const res = await api(path, { method: "POST", key, json });
  const text = await res.text();
  if (res.status !== status) throw new Error(`${path}: expected ${status}, got ${res.status}: ${text}`);
  return JSON.parse(text) as T;
};
const probe = (json: unknown) => api("/v1/probes", { method: "POST", key, json });
/** A probe over a dataset or an evaluation: 202, then polled until its work succeeded. */
const queued = async <T>(path: "/v1/probes" | "/v1/evaluations", json: unknown): Promise<T> => {
  const res = await api(path, { method: "POST", key, json });
  const done = await afterAccepted<{ id: string; status: string }>(res, (id) => api(`${path}/${id}`, { key }));
  if (done.status !== "ready" && done.status !== "succeeded") throw new Error(`${path}: ${JSON.stringify(done)}`);
  return done as T;
};

/** Chance for K balanced classes; a trained encoder should clear it by a wide margin. */
const sane = (m: Metrics, classes: number) => {
  expect(m.accuracy).toBeGreaterThan(1 / classes);
  expect(m.accuracy).toBeLessThanOrEqual(1);
  expect(m.macro_f1).toBeGreaterThan(0);
};

describe("image probes", () => {
  it("digits: a probe on a zip probe set, cached on repeat, an evaluation against raw pixels, predict", async () => {
    const set = await readySet(key, makeZip(heldOutDigits()), { modality: "image", format: "zip", purpose: "probe" });
    const p = await queued<Probe>("/v1/probes", { model: "digits-vit", kind: "linear", train: { dataset: set.id } });
    expect(p).toMatchObject({ model: "digits-vit@1", n_train: 240, n_test: 60, train_dataset: set.id });
    expect(p.labels).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(p.embeddings).toEqual({ cached: 0, embedded: 300 });
    // The trainer measured 0.68 (linear) on these 300 held-out digits (manifest metrics); 3x chance is a floor.
    expect(p.metrics.accuracy).toBeGreaterThan(0.3);
    const again = await queued<Probe>("/v1/probes", { model: "digits-vit", kind: "knn", train: { dataset: set.id } });
    expect(again.embeddings).toEqual({ cached: 300, embedded: 0 });
    sane(again.metrics, 10);

    const e = await queued<Evaluation>("/v1/evaluations", { models: ["digits-vit"], data: { dataset: set.id } });
    expect(e.table.map((r) => [r.name, r.features])).toEqual([
      ["digits-vit@1", "embeddings"],
      ["raw_pixels", "raw_pixels"],
    ]);
    // 16×16 grey preprocessed pixels: 256 values (under the 1,024 pooling cap).
    expect(e.baseline).toEqual({ kind: "raw_pixels", features: 256 });
    const [model, raw] = e.table as [Row, Row];
    // Raw-pixel LR on sklearn digits is the well-known ~96% floor (../shared/data/README.md).
    expect(raw.linear.accuracy).toBeGreaterThan(0.85);
    expect(model.delta_vs_baseline?.linear).toBeCloseTo(model.linear.accuracy - raw.linear.accuracy, 12);
    sane(model.linear, 10);
    console.log(
      `digits (60 test): tiny MAE ViT linear ${model.linear.accuracy.toFixed(3)} knn ${model.knn.accuracy.toFixed(3)}; ` +
        `raw pixels linear ${raw.linear.accuracy.toFixed(3)} knn ${raw.knn.accuracy.toFixed(3)}`,
    );

    const digits = heldOutDigits(1);
    const input = [
      toBase64(digits[3]?.bytes as Uint8Array),
      `data:image/png;base64,${toBase64(digits[7]?.bytes as Uint8Array)}`,
    ];
    const pred = await post<Prediction>(`/v1/probes/${p.id}/predict`, { input }, 200);
    expect(pred.data.map((d) => d.index)).toEqual([0, 1]);
    for (const d of pred.data) {
      expect(p.labels).toContain(d.label);
      expect(Object.values(d.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
    const one = await post<Prediction>(`/v1/probes/${p.id}/predict`, { input: input[0] }, 200);
    expect(one.data).toHaveLength(1);
  });

  it("Fashion-MNIST as an IDX probe set and as inline base64 examples give the same probe", async () => {
    const images = fashionImages().filter((_, i) => i % 20 < 10); // 10 per class
    const idx = makeIdx(images);
    const set = await readySet(
      key,
      makeZip([
        { name: "t10k-images-idx3-ubyte", bytes: idx.images },
        { name: "t10k-labels-idx1-ubyte", bytes: idx.labels },
      ]),
      { modality: "image", format: "zip", purpose: "probe" },
    );
    const fromSet = await queued<Probe>("/v1/probes", { model: "digits-vit", kind: "knn", train: { dataset: set.id } });
    // IDX images become PNGs whose bytes equal the inline ones below: the cache serves them all.
    const inline = images.map((im) => ({ input: toBase64(encodeGreyPng(im.pixels, 28, 28)), label: String(im.label) }));
    const fromInline = await post<Probe>("/v1/probes", { model: "digits-vit", kind: "knn", train: inline });
    expect(fromInline.embeddings).toEqual({ cached: 100, embedded: 0 });
    expect(fromInline.metrics).toEqual(fromSet.metrics);
    sane(fromSet.metrics, 10);
  });

  it("refuses inputs of the wrong kind with the field named", async () => {
    const good = heldOutDigits(6).map((m) => ({ input: toBase64(m.bytes), label: m.name.split("/")[0] }));
    let p = await expectProblem(
      await probe({ model: "digits-vit", kind: "knn", train: [{ input: [1, 2, 3], label: "a" }] }),
      400,
    );
    expect(p.errors?.[0]).toMatchObject({ path: "train[0].input" });
    expect(p.detail).toContain("image model");
    p = await expectProblem(
      await probe({ model: "digits-vit", kind: "knn", train: [{ input: "a photo of a cat", label: "cat" }, ...good] }),
      422,
    );
    expect(p.detail).toMatch(/^train\[0\]\.input: digits-vit@1 is an image encoder, but probe inputs are text/);
    // Valid base64 that is not an image fails at decoding, named by its place in the request.
    const bad = [...good];
    bad[4] = { input: toBase64(enc.encode("GIF89a not really")), label: "0" };
    p = await expectProblem(await probe({ model: "digits-vit", kind: "knn", train: bad, test: { split: 0.5 } }), 400);
    expect(p.errors?.[0]?.path).toBe("train[4].input");
    expect(p.detail).toContain("not a PNG or JPEG");
    const series = await readySet(key, enc.encode(italyProbe), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    p = await expectProblem(await probe({ model: "digits-vit", kind: "knn", train: { dataset: series.id } }), 422);
    expect(p.errors).toEqual([{ path: "train.dataset", message: "must be an image probe set" }]);
  });
});

describe("time-series probes", () => {
  it("ItalyPowerDemand: probe from the jsonl set, CSV set as test, evaluation against raw values, predict", async () => {
    const set = await readySet(key, enc.encode(italyProbe), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    const csv = await readySet(key, enc.encode(italyCsv), { modality: "timeseries", format: "csv", purpose: "probe" });
    const p = await queued<Probe>("/v1/probes", {
      model: "power",
      kind: "linear",
      train: { dataset: set.id },
      test: { dataset: csv.id },
    });
    expect(p).toMatchObject({ model: "power@1", n_train: 300, n_test: 40, labels: ["1", "2"] });
    // The trainer measured 0.95 linear / 0.92 kNN on an 80/20 split of this set (manifest metrics).
    expect(p.metrics.accuracy).toBeGreaterThan(0.75);

    const data = italy.slice(0, 200).map((s) => ({ input: s.values, label: s.label }));
    const e = await queued<Evaluation>("/v1/evaluations", { models: ["power"], data, test: { split: 0.3, seed: 2 } });
    expect(e.baseline).toEqual({ kind: "raw_values", features: 128 });
    const [model, raw] = e.table as [Row, Row];
    expect(raw.name).toBe("raw_values");
    sane(model.linear, 2);
    sane(raw.linear, 2);
    console.log(
      `ItalyPowerDemand (${e.n_test} test): tiny masked Transformer linear ${model.linear.accuracy.toFixed(3)} ` +
        `knn ${model.knn.accuracy.toFixed(3)}; raw values linear ${raw.linear.accuracy.toFixed(3)} knn ${raw.knn.accuracy.toFixed(3)}`,
    );

    const one = await post<Prediction>(`/v1/probes/${p.id}/predict`, { input: italy[0]?.values }, 200);
    expect(one.data).toHaveLength(1);
    const several = italy.slice(0, 3).map((s) => s.values);
    // Channel-array form of one series, and a shorter series (padded at the edge).
    const more = await post<Prediction>(
      `/v1/probes/${p.id}/predict`,
      { input: [...several, (italy[5] as { values: number[] }).values.slice(0, 13)] },
      200,
    );
    expect(more.data.map((d) => d.index)).toEqual([0, 1, 2, 3]);
    expect(more.data[0]).toEqual(one.data[0]);
  });

  it("refuses text, images and extra series where one series is expected, and models of mixed inputs", async () => {
    const two = italy.slice(0, 10).map((s) => ({ input: s.values, label: s.label }));
    let p = await expectProblem(
      await probe({ model: "power", kind: "knn", train: [{ input: "12,13,14", label: "1" }, ...two] }),
      422,
    );
    expect(p.errors?.[0]?.path).toBe("train[0].input");
    expect(p.detail).toContain("time-series encoder, but probe inputs are text");
    p = await expectProblem(
      await probe({
        model: "power",
        kind: "knn",
        train: [
          {
            input: [
              [1, 2],
              [3, 4],
            ],
            label: "1",
          },
          ...two,
        ],
      }),
      400,
    );
    expect(p.detail).toMatch(/^train\[0\]\.input: one example is one series; got 2/);
    p = await expectProblem(
      await api("/v1/probes/prb_nope/predict", { method: "POST", key, json: { input: [1, 2] } }),
      404,
    );
    const made = await post<Probe>("/v1/probes", {
      model: "power",
      kind: "knn",
      train: italy.slice(0, 40).map((s) => ({ input: s.values, label: s.label })),
    });
    p = await expectProblem(
      await api(`/v1/probes/${made.id}/predict`, { method: "POST", key, json: { input: ["aGVsbG8="] } }),
      422,
    );
    expect(p.errors?.[0]?.path).toBe("input");
    // One univariate series of 3000 points is one input (cut to the model's max_length), not 3000.
    const long = Array.from({ length: 3000 }, (_, t) => Math.sin(t / 5));
    const predicted = await post<Prediction>(`/v1/probes/${made.id}/predict`, { input: long }, 200);
    expect(predicted.data).toHaveLength(1);
    p = await expectProblem(
      await api(`/v1/probes/${made.id}/predict`, {
        method: "POST",
        key,
        json: { input: Array.from({ length: 2049 }, () => [1, 2, 3]) },
      }),
      413,
    );
    expect(p.detail).toContain("at most 2048 inputs per call; got 2049");
    p = await expectProblem(
      await api(`/v1/probes/${made.id}/predict`, {
        method: "POST",
        key,
        json: {
          input: [
            [1, 2],
            [3, 1e39],
          ],
        },
      }),
      400,
    );
    expect(p.errors?.[0]?.path).toBe("input[1][1]");
    expect(p.detail).toContain("beyond float32");
    p = await expectProblem(
      await api("/v1/evaluations", { method: "POST", key, json: { models: ["power", "digits-vit"], data: two } }),
      422,
    );
    expect(p.errors).toEqual([{ path: "models[1]", message: "must take 1-channel series like models[0]" }]);
  });
});

describe("probe-set memory bounds", () => {
  // A probe set is read whole inside the Worker; the guard reads the sizes the dataset check
  // recorded (decompressed bytes, values), so a set that is over is refused before any R2 read.
  it("refuses an image set over the decompressed limit and a series set over the value limit (413)", async () => {
    const images = await readySet(key, makeZip(heldOutDigits(12)), {
      modality: "image",
      format: "zip",
      purpose: "probe",
    });
    const series = await readySet(key, enc.encode(italyProbe), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    const grow = (id: string, field: string, value: number) =>
      env.DB.prepare(`UPDATE datasets SET stats = json_set(stats, '$.${field}', ?) WHERE id = ?`).bind(value, id).run();
    await grow(images.id, "decompressed_bytes", 25 * 1024 * 1024);
    await grow(series.id, "points", 2_000_001);
    let p = await expectProblem(await probe({ model: "digits-vit", kind: "knn", train: { dataset: images.id } }), 413);
    expect(p.detail).toContain("decompressed");
    p = await expectProblem(await probe({ model: "power", kind: "knn", train: { dataset: series.id } }), 413);
    expect(p.errors?.[0]?.path).toBe("train.dataset");
    expect(p.detail).toContain("2000001 values");
  });
});
