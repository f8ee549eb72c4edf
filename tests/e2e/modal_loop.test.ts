// Images and time series through the same loop as text, driven by the CLI against a real
// `wrangler dev` and a real trainer: upload a labeled set of real data, pretrain on it (SimCLR on
// sklearn digits; masked patch prediction on ItalyPowerDemand), see the version registered, embed
// an image file and a series from the command line, and evaluate against the raw-feature baseline.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Platform, ROOT, startPlatform } from "./platform";

let p: Platform;

beforeAll(async () => {
  p = await startPlatform("selfsup-modal-");
});

afterAll(async () => {
  await p?.stop();
});

type Dataset = { id: string; status: string; stats: { records?: number; labels?: Record<string, number> } };
type Job = { id: string; status: string; modelVersion: string | null; progress: { step: number; total: number } };
type Evaluation = {
  table: { name: string; kind?: string; linear: { accuracy: number }; knn: { accuracy: number } }[];
};
type Embeddings = { model: string; data: { embedding: number[] }[]; usage: { total_tokens: number } };

async function uploadTrainEvaluate(opts: {
  file: string;
  modality: "image" | "timeseries";
  objective: string;
  model: string;
  set: string[];
}) {
  const probe = await p.cliJson<Dataset>(
    "datasets",
    "upload",
    opts.file,
    "--purpose",
    "probe",
    "--modality",
    opts.modality,
  );
  expect(probe.status, JSON.stringify(probe)).toBe("ready");
  // Self-supervised: the same records, labels unused, are the pretraining set.
  const corpus = await p.cliJson<Dataset>("datasets", "upload", opts.file, "--modality", opts.modality);
  expect(corpus.status, JSON.stringify(corpus)).toBe("ready");
  const job = await p.cliJson<Job>(
    "train",
    "--dataset",
    corpus.id,
    "--objective",
    opts.objective,
    "--model",
    opts.model,
    "--steps",
    "30",
    "--batch-size",
    "32",
    ...opts.set.flatMap((s) => ["--set", s]),
    "--eval-dataset",
    probe.id,
    "--watch",
  );
  expect(job, p.trainerLog.join("")).toMatchObject({
    status: "succeeded",
    modelVersion: `${opts.model}@1`,
    progress: { step: 30, total: 30 },
  });
  const evaluation = await p.cliJson<Evaluation>("evaluate", "--dataset", probe.id, `${opts.model}@1`);
  return { probe, evaluation };
}

describe("images and time series through the CLI", () => {
  it("digits: upload -> SimCLR job -> registered -> embed a PNG -> evaluate vs raw pixels", async () => {
    const { probe, evaluation } = await uploadTrainEvaluate({
      file: path.join(ROOT, "tests/fixtures/images/digits-probe.zip"),
      modality: "image",
      objective: "simclr",
      model: "digits",
      set: ["image_size=16", "architecture=vit", "patch_size=4"],
    });
    expect(Object.keys(probe.stats.labels ?? {})).toHaveLength(10);
    const emb = await p.cliJson<Embeddings>(
      "embed",
      "--model",
      "digits",
      "--image",
      path.join(ROOT, "tests/fixtures/images/grey.png"),
      path.join(ROOT, "tests/fixtures/images/rgb.png"),
    );
    expect(emb.model).toBe("digits@1");
    expect(emb.data).toHaveLength(2);
    expect(emb.usage.total_tokens).toBe(2 * 16 * 16); // pixels of the model input
    const norm = Math.hypot(...(emb.data[0]?.embedding ?? []));
    expect(norm).toBeCloseTo(1, 4);
    const [model, baseline] = evaluation.table;
    expect(model?.name).toBe("digits@1");
    expect(baseline?.name).toBe("raw_pixels");
    // 10 balanced classes: both a 30-step encoder and raw pixels are far above chance (10%).
    expect(model?.knn.accuracy).toBeGreaterThan(0.3);
    expect(baseline?.linear.accuracy).toBeGreaterThan(0.6);
  }, 600_000);

  it("ItalyPowerDemand: upload -> masked-patch job -> registered -> embed a series -> evaluate vs raw values", async () => {
    const { evaluation } = await uploadTrainEvaluate({
      file: path.join(ROOT, "tests/fixtures/series/italy-power-probe.jsonl"),
      modality: "timeseries",
      objective: "masked",
      model: "power",
      set: ["series_patch=4"],
    });
    // The first day of the set (24 hourly readings), as a user would send it.
    const first = readFileSync(path.join(ROOT, "tests/fixtures/series/italy-power-probe.jsonl"), "utf8").split("\n")[0];
    const day = (JSON.parse(first ?? "{}") as { values: number[] }).values;
    const emb = await p.cliJson<Embeddings>("embed", "--model", "power", "--series", JSON.stringify(day));
    expect(emb.model).toBe("power@1");
    expect(emb.usage.total_tokens).toBe(24); // observed points x channels
    const [model, baseline] = evaluation.table;
    expect(model?.name).toBe("power@1");
    expect(baseline?.name).toBe("raw_values");
    expect(model?.linear.accuracy).toBeGreaterThan(0.6); // 2 classes
    expect(baseline?.linear.accuracy).toBeGreaterThan(0.8);
  }, 600_000);
});
