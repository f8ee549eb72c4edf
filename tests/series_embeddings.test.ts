// /v1/embeddings for a time-series model (tests/fixtures/tiny-series-encoder: a patch Transformer on
// ItalyPowerDemand, 1 channel, max_length 24, patch 8) with onnxruntime-web running in workerd:
// parity with Python onnxruntime, input forms (univariate and multivariate), padding and
// truncation, batching, usage, and the raw-value baseline of decision 0005.
import { beforeAll, describe, expect, it } from "vitest";
import { type ModalItem, modalItemKey } from "../api/services/encoder/items";
import { parseModalInput } from "../api/services/encoder/modal";
import type { Manifest } from "../api/services/manifest";
import { rawFeatures, resample } from "../api/services/probe/raw_features";
import { cosine, decodeBase64Floats } from "./embeddings_fixture";
import { api, expectProblem, newTenant } from "./helpers";
import { encoderJson, encoderManifest, imageFixture, importEncoder, toBase64, worstBatchCosine } from "./modal_fixture";

type EmbeddingsBody = {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
};
type Case = { series: number[]; length: number; fp32: number[]; int8: number[] };
type Reference = { cases: Case[]; batch: { series: number[][]; fp32: number[][]; int8: number[][] } };

const DIR = "tiny-series-encoder";
const MODEL = "italy-power";
let key = "";
const ref = () => encoderJson<Reference>(DIR, "reference_embeddings.json");
const maxLength = () => (encoderManifest(DIR).preprocessing as { max_length: number }).max_length;

const embed = (body: Record<string, unknown>) =>
  api("/v1/embeddings", { method: "POST", key, json: { model: MODEL, ...body } });

async function vectors(body: Record<string, unknown>): Promise<number[][]> {
  const res = await embed(body);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${text}`);
  return (JSON.parse(text) as EmbeddingsBody).data.map((d) => d.embedding as number[]);
}

beforeAll(async () => {
  key = (await newTenant(["admin"])).secret;
  await importEncoder(key, DIR, MODEL);
});

describe("parity with Python onnxruntime (reference_embeddings.json)", () => {
  it("single series of lengths 24 down to 1 (padded to a multiple of patch_size), fp32 and int8", async () => {
    const c32: number[] = [];
    const c8: number[] = [];
    for (const c of ref().cases) {
      c32.push(cosine((await vectors({ input: c.series, precision: "fp32" }))[0] as number[], c.fp32));
      c8.push(cosine((await vectors({ input: c.series, precision: "int8" }))[0] as number[], c.int8));
    }
    console.log(
      `series parity over ${c32.length} series: fp32 min ${Math.min(...c32).toFixed(9)}, int8 min ${Math.min(...c8).toFixed(9)}`,
    );
    for (const c of c32) expect(c).toBeGreaterThanOrEqual(0.9999);
    for (const c of c8) expect(c).toBeGreaterThanOrEqual(0.999);
  });

  it("a batch of series of different lengths matches Python's batched feed", async () => {
    const { batch } = ref();
    const fp32 = await vectors({ input: batch.series, precision: "fp32" });
    const int8 = await vectors({ input: batch.series, precision: "int8" });
    for (const [i, v] of fp32.entries()) expect(cosine(v, batch.fp32[i] as number[])).toBeGreaterThanOrEqual(0.9999);
    for (const [i, v] of int8.entries()) expect(cosine(v, batch.int8[i] as number[])).toBeGreaterThanOrEqual(0.999);
  });
});

describe("POST /v1/embeddings with a time-series model", () => {
  it("OpenAI's list shape; usage counts observed points × channels", async () => {
    const series = ref().batch.series;
    const res = await embed({ input: series });
    expect(res.status).toBe(200);
    const body = await res.json<EmbeddingsBody>();
    expect(body.object).toBe("list");
    expect(body.model).toBe(`${MODEL}@1`);
    expect(body.data.map((d) => [d.object, d.index])).toEqual(series.map((_, i) => ["embedding", i]));
    expect(body.data[0]?.embedding as number[]).toHaveLength(encoderManifest(DIR).dims);
    const points = series.reduce((n, s) => n + s.length, 0);
    expect(body.usage).toEqual({ prompt_tokens: points, total_tokens: points });
  });

  it("a 1-channel model takes number[], number[][] and channel-form number[][][] alike", async () => {
    const s = ref().cases[0]?.series as number[];
    const t = ref().cases[5]?.series as number[];
    const [single] = await vectors({ input: s, precision: "fp32" });
    const several = await vectors({ input: [s, t], precision: "fp32" });
    const channelForm = await vectors({ input: [[s], [t]], precision: "fp32" });
    expect(cosine(single as number[], several[0] as number[])).toBeCloseTo(1, 6);
    expect(cosine(several[1] as number[], channelForm[1] as number[])).toBeCloseTo(1, 9);
  });

  it("an input's embedding does not depend on what it is batched with (fp32 and int8)", async () => {
    const series = ref().cases.map((c) => c.series);
    for (const precision of ["fp32", "int8"]) {
      const worst = await worstBatchCosine(vectors, series, precision);
      console.log(`series batch invariance ${precision}: min cosine alone vs batched ${worst.toFixed(8)}`);
      expect(worst).toBeGreaterThanOrEqual(0.99999);
    }
  });

  it("a series past max_length keeps its first points; truncate: false is a 413 naming it", async () => {
    const s = ref().cases[0]?.series as number[];
    const long = [...s, ...s.slice(0, 9)];
    const res = await embed({ input: long, precision: "fp32" });
    const body = await res.json<EmbeddingsBody>();
    expect(body.usage.prompt_tokens).toBe(maxLength());
    const [first] = await vectors({ input: s.slice(0, maxLength()), precision: "fp32" });
    expect(cosine(body.data[0]?.embedding as number[], first as number[])).toBeCloseTo(1, 9);
    const p = await expectProblem(await embed({ input: [s, long], truncate: false }), 413);
    expect(p.errors?.[0]?.path).toBe("input[1]");
    expect(p.detail).toContain(`max_length ${maxLength()}`);
  });

  it("2048 series in one request (fp32 and int8) with base64 output", async () => {
    const cases = ref().cases;
    const input = Array.from({ length: 2048 }, (_, i) => cases[i % cases.length]?.series as number[]);
    for (const precision of ["fp32", "int8"]) {
      const started = Date.now();
      const body = await (await embed({ input, precision, encoding_format: "base64" })).json<EmbeddingsBody>();
      console.log(`2048 series ${precision}: ${body.usage.prompt_tokens} points in ${Date.now() - started} ms`);
      expect(body.data).toHaveLength(2048);
      const alone = (await vectors({ input: input[2047], precision }))[0] as number[];
      expect(cosine(alone, decodeBase64Floats(body.data[2047]?.embedding as string))).toBeGreaterThanOrEqual(0.99999);
    }
  });

  const cases400: [string, unknown, string, RegExp][] = [
    ["text", "the power demand in Italy", "input", /1-channel time-series model and does not take text/],
    ["an array of strings", ["a", "b"], "input", /does not take text/],
    ["a base64 image", toBase64(imageFixture("grey.png")), "input", /time-series model/],
    [
      "3 channels for a 1-channel model",
      [
        [
          [1, 2, 3],
          [4, 5, 6],
          [7, 8, 9],
        ],
      ],
      "input[0]",
      /has 3 channels; the model takes 1/,
    ],
    ["an empty series", [[1, 2], []], "input[1]", /empty series/],
    ["null inside a series", [1, null, 3], "input", /./],
    [
      "a value beyond float32 in a batch",
      [
        [1, 2],
        [3, 1e39],
      ],
      "input[1][1]",
      /1e\+39 is beyond float32/,
    ],
    ["a value beyond float32 in one series", [1, -4e38, 3], "input[1]", /-4e\+38 is beyond float32/],
  ];
  for (const [name, input, field, message] of cases400) {
    it(`400 for ${name}, naming ${field}`, async () => {
      const p = await expectProblem(await embed({ input }), 400);
      expect(p.errors?.[0]?.path ?? p.detail).toContain(field);
      expect(p.detail).toMatch(message);
    });
  }

  it("/v1/tokenize is a 400 naming the modality; /info shows preprocessing and units", async () => {
    const res = await api("/v1/tokenize", { method: "POST", key, json: { model: MODEL, inputs: "1 2 3" } });
    expect((await expectProblem(res, 400)).detail).toMatch(/is a timeseries encoder/);
    const info = await (await api(`/v1/models/${MODEL}/info`, { key })).json<Record<string, unknown>>();
    expect(info).toMatchObject({
      modality: "timeseries",
      microbatch_unit: "points",
      input_unit: "point",
      preprocessing: encoderManifest(DIR).preprocessing,
    });
    expect(info.microbatch_token_budget as number).toBeGreaterThanOrEqual(maxLength());
  });

  it("registration refuses series preprocessing the edge cannot honour, naming the field", async () => {
    const patches: [Record<string, unknown>, string][] = [
      [{ in_graph: false }, "manifest.preprocessing.in_graph"],
      [{ max_length: 20 }, "manifest.preprocessing.max_length"],
      [{ normalization: "dataset", mean: null }, "manifest.preprocessing.mean"],
      [{ pad: "start" }, "manifest.preprocessing.pad"],
    ];
    for (const [patch, path] of patches) {
      const err = await importEncoder(key, DIR, "bad-series", (m) => ({
        ...m,
        preprocessing: { ...(m.preprocessing as Record<string, unknown>), ...patch },
      })).catch((e: Error) => e);
      expect(String(err)).toContain(" 400 ");
      expect(String(err)).toContain(path);
    }
    const err = await importEncoder(key, DIR, "bad-series", (m) => ({ ...m, inputs: ["values"] })).catch(
      (e: Error) => e,
    );
    expect(String(err)).toContain("manifest.inputs");
  });
});

describe("multivariate input forms and the raw-value baseline (no model needed)", () => {
  const manifest = (channels: number) =>
    ({
      ...encoderManifest(DIR),
      preprocessing: { ...(encoderManifest(DIR).preprocessing as object), channels },
    }) as Manifest;

  it("a 3-channel model takes number[][] as one series and number[][][] as several", () => {
    const one = [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 8, 7, 6],
    ];
    expect(parseModalInput(manifest(3), one)).toEqual([{ kind: "series", values: one }]);
    expect(parseModalInput(manifest(3), [one, one])).toHaveLength(2);
    expect(() => parseModalInput(manifest(3), [1, 2, 3])).toThrow(/3-channel time-series model/);
    expect(() => parseModalInput(manifest(3), [one[0], one[1]])).toThrow(/has 2 channels; the model takes 3/);
    expect(() => parseModalInput(manifest(3), [[1, 2], [3], [4, 5]])).toThrow(
      /input\[1\]: has 1 points, channel 0 has 2/,
    );
    // 1e400 in a JSON body parses to Infinity; a value past float32's max would become inf.
    expect(() => parseModalInput(manifest(3), [one, [one[0], [1, 2, Infinity, 4], one[2]]])).toThrow(
      /input\[1\]\[1\]\[2\]: Infinity is not finite/,
    );
    expect(() => parseModalInput(manifest(3), [one[0], one[1], [1, 2, 3, -1e39]])).toThrow(
      /input\[2\]\[3\]: -1e\+39 is beyond float32/,
    );
    expect(() => parseModalInput(manifest(1), JSON.parse("[[1, 2], [3, 1e400]]"))).toThrow(
      /input\[1\]\[1\]: Infinity is not finite/,
    );
    expect(parseModalInput(manifest(1), [3.4028234663852886e38, -3.4028234663852886e38])).toHaveLength(1);
  });

  it("raw features: per-series normalized, resampled to 128 points per channel", () => {
    const s = ref().cases[0]?.series as number[];
    const items: ModalItem[] = [{ kind: "series", values: [s, s.map((v) => 10 * v + 3)] }];
    const [f] = rawFeatures(manifest(2), items);
    expect(f).toHaveLength(256);
    // Normalization removes scale and offset, so both channels give the same features.
    for (let k = 0; k < 128; k++) expect(f?.[k]).toBeCloseTo(f?.[128 + k] as number, 3);
    const mean = Array.from(f?.subarray(0, 128) ?? []).reduce((a, b) => a + b, 0) / 128;
    expect(Math.abs(mean)).toBeLessThan(0.1);
    expect(Array.from(resample([0, 10], 5))).toEqual([0, 2.5, 5, 7.5, 10]);
    expect(Array.from(resample([4], 3))).toEqual([4, 4, 4]);
  });

  it("raw features of an image pool its preprocessed pixels; cache keys are the file or the values", () => {
    const img = encoderJson<Manifest>("tiny-image-encoder", "manifest.json");
    const bytes = imageFixture("rgb.png");
    const [f] = rawFeatures(img, [{ kind: "image", bytes }]);
    expect(f?.length).toBe(256); // 1 × 16 × 16 is under 1024: unpooled
    expect(modalItemKey({ kind: "image", bytes })).toBe(bytes);
    expect(new TextDecoder().decode(modalItemKey({ kind: "series", values: [[1, 2.5]] }))).toBe("[[1,2.5]]");
  });
});
