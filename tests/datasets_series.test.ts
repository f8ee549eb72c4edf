import { describe, expect, it } from "vitest";
import { type DatasetBody, expectInvalid, readySet, uploadAndComplete } from "./dataset_upload";
import basicMotions from "./fixtures/series/basic-motions.jsonl?raw";
import italyProbe from "./fixtures/series/italy-power-probe.jsonl?raw";
import italyCsv from "./fixtures/series/italy-power-small.csv?raw";
import { addKey, api, expectProblem, newTenant } from "./helpers";
import { fashionPngMembers, gzip, makeZip } from "./image_sets";

const enc = new TextEncoder();
type Stats = {
  records: number;
  channels: number;
  min_length: number;
  max_length: number;
  mean_length: number;
  points: number;
  labels?: Record<string, number>;
};
const stats = (d: DatasetBody) => d.stats as unknown as Stats;
const italyLines = italyProbe.trim().split("\n");
const italyLabels = italyLines.reduce<Record<string, number>>((acc, l) => {
  const label = String((JSON.parse(l) as { label: string }).label);
  acc[label] = (acc[label] ?? 0) + 1;
  return acc;
}, {});
const csvRows = italyCsv.trim().split("\n");
/** Each data row's length: its last non-empty time-step cell (the fixture's rows are 16-24 points). */
const rowLengths = (rows: string[][]) =>
  rows.slice(1).map((r) => r.slice(0, 24).reduce((n, c, i) => (c.trim() === "" ? n : i + 1), 0));

describe("time-series datasets", () => {
  it("jsonl probe set (ItalyPowerDemand) and jsonl.gz multivariate set (BasicMotions, 6 channels)", async () => {
    const { secret } = await newTenant(["train"]);
    const d = await readySet(secret, enc.encode(italyProbe), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    expect(stats(d)).toMatchObject({
      records: italyLines.length,
      channels: 1,
      min_length: 24,
      max_length: 24,
      mean_length: 24,
      points: 24 * italyLines.length,
      labels: italyLabels,
    });
    expect(Object.keys(italyLabels).length).toBe(2);
    const m = await readySet(secret, gzip(enc.encode(basicMotions)), { modality: "timeseries", format: "jsonl.gz" });
    const first = JSON.parse(basicMotions.split("\n")[0] as string) as { values: number[][] };
    expect(stats(m)).toMatchObject({ records: 12, channels: 6, max_length: first.values[0]?.length });
  });

  it("csv and csv.gz: header row, label column, trailing empty cells make a shorter series", async () => {
    const { secret } = await newTenant(["train"]);
    const d = await readySet(secret, enc.encode(italyCsv), { modality: "timeseries", format: "csv", purpose: "probe" });
    const lengths = rowLengths(csvRows.map((r) => r.split(",")));
    expect(Math.min(...lengths)).toBeLessThan(24);
    expect(stats(d)).toMatchObject({
      records: csvRows.length - 1,
      channels: 1,
      min_length: Math.min(...lengths),
      max_length: 24,
      mean_length: Math.round((lengths.reduce((a, b) => a + b) / lengths.length) * 10) / 10,
    });
    expect(Object.keys(stats(d).labels ?? {}).length).toBe(2);
    // Without the label column, a row cut to 5 points, CRLF line ends, gzipped: still valid.
    const cells = csvRows.map((r) => r.split(",").slice(0, 24));
    cells[1] = (cells[1] as string[]).map((c, i) => (i >= 5 ? "" : c));
    const text = `${cells.map((r) => r.join(",")).join("\r\n")}\r\n`;
    const v = await readySet(secret, gzip(enc.encode(text)), { modality: "timeseries", format: "csv.gz" });
    expect(stats(v)).toMatchObject({ min_length: 5, max_length: 24, records: csvRows.length - 1 });
    expect(stats(v).labels).toBeUndefined();
  });

  it("names the line and column of a NaN, an empty cell inside a series, text, and a JSON null", async () => {
    const { secret } = await newTenant(["train"]);
    const cells = csvRows.map((r) => r.split(","));
    (cells[3] as string[])[5] = "NaN"; // line 4, column h05
    (cells[6] as string[])[10] = ""; // line 7, column h10 (not trailing)
    (cells[8] as string[])[0] = "n/a";
    const csv = `${cells.map((r) => r.join(",")).join("\n")}\n`;
    const r = await uploadAndComplete(secret, enc.encode(csv), { modality: "timeseries", format: "csv" });
    const p = await expectInvalid(r);
    expect(p.errors?.map((e) => e.path)).toEqual(["line 4, column h05", "line 7, column h10", "line 9, column h00"]);
    expect(p.errors?.[0]?.message).toMatch(/`NaN` is not finite/);
    expect(p.errors?.[1]?.message).toMatch(/empty cell inside the series/);
    expect(p.errors?.[2]?.message).toMatch(/`n\/a` is not a number/);
    expect(p.detail).toMatch(/^Dataset ds_\w+ is invalid: line 4, column h05: /);

    const lines = italyLines.slice(0, 6);
    lines[1] = (lines[1] as string).replace(/^\{"values": \[([^,]+),/, '{"values": [$1, null,');
    lines[2] = (lines[2] as string).replace(/^\{"values": \[([^,]+),/, '{"values": [NaN,');
    const j = await uploadAndComplete(secret, enc.encode(lines.join("\n")), {
      modality: "timeseries",
      format: "jsonl",
    });
    const q = await expectInvalid(j);
    expect(q.errors?.map((e) => e.path)).toEqual(["line 2, column values[1]", "line 3"]);
    expect(q.errors?.[1]?.message).toContain("not valid JSON (NaN and Infinity are not JSON either)");
  });

  it("refuses values beyond float32 (and 1e400, which parses to Infinity) and more than 256 channels", async () => {
    const { secret } = await newTenant(["train"]);
    const cells = csvRows.map((r) => r.split(","));
    (cells[2] as string[])[3] = "1e39"; // line 3, column h03: finite in float64, inf in float32
    (cells[4] as string[])[1] = "-1e400"; // line 5, column h01: -Infinity once parsed
    (cells[5] as string[])[2] = "3.4028234663852886e38"; // float32's max is fine
    const csv = `${cells.map((r) => r.join(",")).join("\n")}\n`;
    let r = await uploadAndComplete(secret, enc.encode(csv), { modality: "timeseries", format: "csv" });
    let p = await expectInvalid(r);
    expect(p.errors?.map((e) => e.path)).toEqual(["line 3, column h03", "line 5, column h01"]);
    expect(p.errors?.[0]?.message).toMatch(/`1e39` is beyond float32 .*rescale the series/);
    expect(p.errors?.[1]?.message).toMatch(/`-1e400` is not finite/);

    const lines = italyLines.slice(0, 6);
    lines[1] = (lines[1] as string).replace(/^\{"values": \[([^,]+),/, '{"values": [$1, 1e39,');
    lines[3] = (lines[3] as string).replace(/^\{"values": \[([^,]+),/, '{"values": [1e400,');
    lines[4] = JSON.stringify({ values: Array.from({ length: 257 }, () => [1, 2]) });
    r = await uploadAndComplete(secret, enc.encode(lines.join("\n")), { modality: "timeseries", format: "jsonl" });
    p = await expectInvalid(r);
    expect(p.errors?.map((e) => e.path)).toEqual([
      "line 2, column values[1]",
      "line 4, column values[0]",
      "line 5, column values",
    ]);
    expect(p.errors?.[0]?.message).toContain("beyond float32");
    expect(p.errors?.[1]?.message).toContain("is not finite");
    expect(p.errors?.[2]?.message).toBe("257 channels; at most 256 are supported (drop or merge channels)");
  });

  it("jobs: a pretraining set smaller than the trainer's minimum is refused (422 naming dataset)", async () => {
    const t = await newTenant(["train"]);
    const few = await readySet(t.secret, enc.encode(italyLines.slice(0, 3).join("\n")), {
      modality: "timeseries",
      format: "jsonl",
    });
    const post = (dataset: string, objective: string) =>
      api("/v1/pretraining/jobs", { method: "POST", key: t.secret, json: { dataset, objective, model: "small" } });
    let p = await expectProblem(await post(few.id, "masked"), 422);
    expect(p.errors).toEqual([{ path: "dataset", message: "has 3 series, needs at least 4" }]);
    const images = await readySet(t.secret, makeZip(fashionPngMembers().slice(0, 23)), {
      modality: "image",
      format: "zip",
    });
    p = await expectProblem(await post(images.id, "simclr"), 422);
    expect(p.errors).toEqual([{ path: "dataset", message: "has 23 images, needs at least 24" }]);
    expect(p.detail).toContain("pretraining needs at least 24");
    const enough = await readySet(t.secret, enc.encode(italyLines.slice(0, 4).join("\n")), {
      modality: "timeseries",
      format: "jsonl",
    });
    expect((await post(enough.id, "masked")).status).toBe(201);
  });

  it("refuses mixed channel counts, unlabeled probe records, a missing header, and a single label", async () => {
    const { secret } = await newTenant(["train"]);
    const mixed = `${JSON.stringify({
      values: [
        [1, 2, 3],
        [4, 5, 6],
      ],
    })}\n${JSON.stringify({ values: [1, 2, 3] })}\n`;
    let r = await uploadAndComplete(secret, enc.encode(mixed), { modality: "timeseries", format: "jsonl" });
    let p = await expectInvalid(r);
    expect(p.errors?.[0]).toEqual({
      path: "line 2, column values",
      message: "1 channel(s) but the first series (line 1) has 2; every series needs the same channel count",
    });
    const ragged = `${JSON.stringify({
      values: [
        [1, 2, 3],
        [4, 5],
      ],
    })}\n`;
    r = await uploadAndComplete(secret, enc.encode(ragged), { modality: "timeseries", format: "jsonl" });
    expect((await expectInvalid(r)).errors?.[0]?.path).toBe("line 1, column values[1]");

    const unlabeled = `${italyLines[0]}\n${JSON.stringify({ values: [1, 2] })}\n`;
    r = await uploadAndComplete(secret, enc.encode(unlabeled), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    p = await expectInvalid(r);
    expect(p.errors?.[0]).toMatchObject({ path: "line 2, column label" });

    r = await uploadAndComplete(secret, enc.encode(csvRows.slice(1).join("\n")), {
      modality: "timeseries",
      format: "csv",
    });
    expect((await expectInvalid(r)).errors?.[0]).toMatchObject({
      path: "line 1",
      message: expect.stringContaining("looks like data"),
    });
    const one = italyLines.filter((l) => l.endsWith('"label": "1"}')).join("\n");
    r = await uploadAndComplete(secret, enc.encode(one), { modality: "timeseries", format: "jsonl", purpose: "probe" });
    expect((await expectInvalid(r)).detail).toContain("at least 2 labels; found 1");
    r = await uploadAndComplete(secret, new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), {
      modality: "timeseries",
      format: "csv.gz",
    });
    expect((await expectInvalid(r)).detail).toContain("gzip stream is corrupt or truncated");
  });

  it("jobs: the objective and the eval set must match the dataset's modality (422), series fields reach the trainer", async () => {
    const t = await newTenant(["train"]);
    const trainer = await addKey(t.tenantId, ["trainer"]);
    const series = await readySet(t.secret, enc.encode(italyProbe), { modality: "timeseries", format: "jsonl" });
    const seriesProbe = await readySet(t.secret, enc.encode(italyProbe), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    const imageProbe = await readySet(t.secret, makeZip(fashionPngMembers().slice(0, 60)), {
      modality: "image",
      format: "zip",
      purpose: "probe",
    });
    const post = (json: Record<string, unknown>) =>
      api("/v1/pretraining/jobs", {
        method: "POST",
        key: t.secret,
        json: { dataset: series.id, objective: "masked", model: "power", ...json },
      });
    let p = await expectProblem(await post({ objective: "mae" }), 422);
    expect(p.detail).toContain("`mae` is an image objective, but dataset");
    expect(p.errors).toEqual([{ path: "objective", message: "use one of masked, temporal, contrastive" }]);
    p = await expectProblem(await post({ objective: "rotation" }), 400);
    expect(p.errors?.[0]?.path).toBe("objective");
    p = await expectProblem(await post({ eval: { dataset: imageProbe.id } }), 422);
    expect(p.errors).toEqual([{ path: "eval.dataset", message: "must be a timeseries probe set" }]);
    p = await expectProblem(await post({ hyperparameters: { steps: 5, image_size: 64 } }), 422);
    expect(p.errors?.[0]?.path).toBe("hyperparameters.image_size");
    p = await expectProblem(await post({ hyperparameters: { steps: 5, architecture: "vit" } }), 422);
    expect(p.detail).toContain("use one of auto, patch_transformer");
    p = await expectProblem(await post({ hyperparameters: { series_length: 1 } }), 400);
    expect(p.errors?.[0]?.path).toBe("hyperparameters.series_length");
    p = await expectProblem(await post({ hyperparameters: { normalization: "zscore" } }), 400);
    expect(p.errors?.[0]?.path).toBe("hyperparameters.normalization");

    const hyperparameters = {
      steps: 20,
      series_patch: 4,
      predict_patches: 3,
      normalization: "dataset",
      series_length: 24,
    };
    const created = await post({ objective: "temporal", hyperparameters, eval: { dataset: seriesProbe.id } });
    expect(created.status, await created.clone().text()).toBe(201);
    const claim = await api("/v1/trainer/claim", { method: "POST", key: trainer.secret, json: { owner: "t" } });
    const c = await claim.json<{
      job: { modality: string; objective: string; config: Record<string, unknown> };
      corpus: { format: string };
      evalSet: { format: string } | null;
    }>();
    // The trainer builds its TrainConfig from `config` as is: modality and objective included.
    expect(c.job).toMatchObject({ modality: "timeseries", objective: "temporal" });
    expect(c.job.config).toEqual({ objective: "temporal", preset: "tiny", modality: "timeseries", ...hyperparameters });
    expect(c.corpus.format).toBe("jsonl");
    expect(c.evalSet?.format).toBe("jsonl");
  });
});
