// /v1/embeddings for an image model (tests/fixtures/tiny-image-encoder: a ViT on 16×16 grey digits)
// with onnxruntime-web running in workerd: parity with Python onnxruntime on the trainer's own
// preprocessing, the OpenAI shape, input forms, batching, usage, and the errors of decision 0005.
import { zlibSync } from "fflate";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeImage } from "../api/services/image/decode";
import { crc32 } from "../api/services/image/png";
import { preprocessImage } from "../api/services/image/preprocess";
import { imagePreprocessing } from "../api/services/manifest";
import { cosine, decodeBase64Floats } from "./embeddings_fixture";
import { addKey, api, expectProblem, newTenant } from "./helpers";
import {
  encoderJson,
  encoderManifest,
  fromDataUrl,
  imageFixture,
  importEncoder,
  toBase64,
  worstBatchCosine,
} from "./modal_fixture";

type EmbeddingsBody = {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
};
type Case = { member: string; png_base64: string; pixel_values_sum: number; fp32: number[]; int8: number[] };

const DIR = "tiny-image-encoder";
const MODEL = "digits-vit";
let key = "";
let tenantId = "";
const cases = () => encoderJson<{ cases: Case[] }>(DIR, "reference_embeddings.json").cases;
const pixels = () => imagePreprocessing(encoderManifest(DIR)).image_size ** 2;

const embed = (body: Record<string, unknown>, k = key) =>
  api("/v1/embeddings", { method: "POST", key: k, json: { model: MODEL, ...body } });

async function vectors(body: Record<string, unknown>): Promise<number[][]> {
  const res = await embed(body);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${text}`);
  return (JSON.parse(text) as EmbeddingsBody).data.map((d) => d.embedding as number[]);
}

beforeAll(async () => {
  const t = await newTenant(["admin"]);
  key = t.secret;
  tenantId = t.tenantId;
  await importEncoder(key, DIR, MODEL);
});

describe("parity with Python onnxruntime (reference_embeddings.json)", () => {
  it("the Worker's pixel_values are the trainer's (sum over the tensor)", () => {
    const p = imagePreprocessing(encoderManifest(DIR));
    for (const c of cases()) {
      const x = preprocessImage(decodeImage(fromDataUrl(`data:,${c.png_base64}`)), p);
      const sum = x.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - c.pixel_values_sum), c.member).toBeLessThan(1e-3);
    }
  });

  it("fp32 and int8 embeddings match, one image per request", async () => {
    const ref = cases();
    const c32: number[] = [];
    const c8: number[] = [];
    const c8vs32: number[] = [];
    for (const c of ref) {
      const fp32 = (await vectors({ input: c.png_base64, precision: "fp32" }))[0] as number[];
      const int8 = (await vectors({ input: c.png_base64, precision: "int8" }))[0] as number[];
      c32.push(cosine(fp32, c.fp32));
      c8.push(cosine(int8, c.int8));
      c8vs32.push(cosine(int8, c.fp32));
    }
    console.log(
      `image parity over ${ref.length} digits: fp32 vs python fp32 min ${Math.min(...c32).toFixed(9)}, ` +
        `int8 vs python int8 min ${Math.min(...c8).toFixed(9)}, int8 vs fp32 min ${Math.min(...c8vs32).toFixed(5)}`,
    );
    for (const c of c32) expect(c).toBeGreaterThanOrEqual(0.9999);
    for (const c of c8) expect(c).toBeGreaterThanOrEqual(0.999);
    for (const c of c8vs32) expect(c).toBeGreaterThanOrEqual(0.97);
  });
});

describe("POST /v1/embeddings with an image model", () => {
  it("returns OpenAI's list shape in input order; usage counts image_size² per image", async () => {
    const input = cases().map((c) => c.png_base64);
    const res = await embed({ input });
    expect(res.status).toBe(200);
    const body = await res.json<EmbeddingsBody>();
    expect(body.object).toBe("list");
    expect(body.model).toBe(`${MODEL}@1`);
    expect(body.data.map((d) => d.index)).toEqual(input.map((_, i) => i));
    for (const d of body.data) {
      expect(d.object).toBe("embedding");
      expect(d.embedding as number[]).toHaveLength(encoderManifest(DIR).dims);
      const norm = Math.hypot(...(d.embedding as number[]));
      expect(norm).toBeCloseTo(1, 5);
    }
    expect(body.usage).toEqual({ prompt_tokens: input.length * pixels(), total_tokens: input.length * pixels() });
  });

  it("base64, base64url, data URLs and encoding_format base64 give the same vector", async () => {
    const b64 = cases()[3]?.png_base64 as string;
    const [plain] = await vectors({ input: b64, precision: "fp32" });
    const forms = [
      `data:image/png;base64,${b64}`,
      `data:image/jpeg;base64,${b64}`, // the bytes decide the format, not the label
      b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    ];
    for (const input of forms) {
      expect(cosine((await vectors({ input, precision: "fp32" }))[0] as number[], plain as number[])).toBeCloseTo(1, 9);
    }
    const res = await embed({ input: [b64], precision: "fp32", encoding_format: "base64" });
    const body = await res.json<EmbeddingsBody>();
    expect(Array.from(decodeBase64Floats(body.data[0]?.embedding as string))).toEqual(
      Array.from(Float32Array.from(plain as number[])),
    );
  });

  it("takes colour, palette, 16-bit, interlaced PNGs and JPEGs (a 1-channel model converts them)", async () => {
    const files = ["rgb.png", "palette.png", "rgb16.png", "rgba16_interlaced.png", "photo.jpg", "progressive.jpg"];
    const input = files.map((f) => toBase64(imageFixture(f)));
    const out = await vectors({ input });
    expect(out).toHaveLength(files.length);
    for (const v of out) expect(v.every(Number.isFinite)).toBe(true);
  });

  it("an image's embedding does not depend on what it is batched with (fp32 and int8)", async () => {
    const input = cases().map((c) => c.png_base64);
    for (const precision of ["fp32", "int8"]) {
      const worst = await worstBatchCosine(vectors, input, precision);
      console.log(`image batch invariance ${precision}: min cosine alone vs batched ${worst.toFixed(8)}`);
      expect(worst).toBeGreaterThanOrEqual(0.99999);
    }
  });

  it("512 images in one request are micro-batched (fp32) within the WASM budget", async () => {
    const ref = cases();
    const input = Array.from({ length: 512 }, (_, i) => ref[i % ref.length]?.png_base64 as string);
    const started = Date.now();
    const body = await (await embed({ input, precision: "fp32", encoding_format: "base64" })).json<EmbeddingsBody>();
    const ms = Date.now() - started;
    expect(body.data).toHaveLength(512);
    const info = await (await api(`/v1/models/${MODEL}/info`, { key })).json<{
      variants: Record<string, { microbatch_token_budget: number }>;
    }>();
    const budget = info.variants.fp32?.microbatch_token_budget as number;
    const metrics = await (await api("/metrics", { key })).text();
    const line = metrics.split("\n").find((l) => l.startsWith("selfsup_wasm_memory_peak_bytes"));
    const peak = Number(line?.slice(line.lastIndexOf(" ") + 1));
    console.log(
      `512 images fp32 in ${ms} ms; pixel budget per run ${budget} (${budget / pixels()} images); ORT heap peak ${(peak / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(budget / pixels()).toBeGreaterThan(1);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(96 * 2 ** 20);
    for (const i of [0, 9, 511]) {
      const alone = (await vectors({ input: input[i], precision: "fp32" }))[0] as number[];
      expect(cosine(alone, decodeBase64Floats(body.data[i]?.embedding as string))).toBeGreaterThanOrEqual(0.99999);
    }
  });
});

/** A real PNG whose header claims `width × height` (CRC fixed up), for the size limit. */
function pngClaiming(width: number, height: number): Uint8Array {
  const png = imageFixture("grey.png").slice();
  const v = new DataView(png.buffer);
  v.setUint32(16, width);
  v.setUint32(20, height);
  v.setUint32(29, crc32(png, 12, 29));
  return png;
}

/** A `side × side` 8-bit RGB PNG (colour ramps, Sub-filtered rows so it compresses to a few KB). */
function bigRgbPng(side: number): Uint8Array {
  const stride = side * 3 + 1;
  const raw = new Uint8Array(side * stride);
  for (let y = 0; y < side; y++) {
    raw[y * stride] = 1; // Sub: each byte is the difference from the pixel to its left
    raw[y * stride + 1] = y & 255;
    raw[y * stride + 2] = (y >> 4) & 255;
    raw[y * stride + 3] = 255 - (y & 255);
    for (let i = 4; i < stride; i++) raw[y * stride + i] = (i - 1) % 3 === 0 ? 1 : 0;
  }
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    v.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, side);
  new DataView(ihdr.buffer).setUint32(4, side);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlibSync(raw, { level: 9 })),
    chunk("IEND", new Uint8Array(0)),
  ];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    png.set(p, o);
    o += p.length;
  }
  return png;
}

describe("the 16-megapixel limit", () => {
  it("a 4096×4096 RGB PNG (exactly 16 MP) is decoded, resized and embedded inside the isolate", async () => {
    const png = bigRgbPng(4096);
    let t0 = Date.now();
    const img = decodeImage(png);
    const decodeMs = Date.now() - t0;
    t0 = Date.now();
    preprocessImage(img, imagePreprocessing(encoderManifest(DIR)));
    const preprocessMs = Date.now() - t0;
    const started = Date.now();
    const res = await embed({ input: toBase64(png), precision: "fp32" });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    console.log(
      `16 MP RGB PNG (${png.length} bytes encoded): decode ${decodeMs} ms, preprocess ${preprocessMs} ms, request ${Date.now() - started} ms`,
    );
  });
});

describe("bad image inputs are problems naming the input", () => {
  const good = () => cases()[0]?.png_base64 as string;

  const cases400: [string, unknown, string, RegExp][] = [
    ["a series (numbers)", [0.1, 0.2, 0.3], "input", /image model/],
    ["token-id arrays", [[1, 2, 3]], "input", /image model/],
    [
      "text that is not base64",
      "a photo of a cat!",
      "input",
      /input: looks like text; this is an image model; send a base64 PNG\/JPEG/,
    ],
    [
      "text in an array",
      ["aGVsbG8=", "a dog, sleeping"],
      "input[1]",
      /input\[1\]: looks like text; this is an image model/,
    ],
    ["base64 that is not an image", btoa("just some text, honestly"), "input", /not a PNG or JPEG/],
    ["an empty string in an array", ["", "x"], "input[0]", /must not be empty/],
    ["a non-image data URL", "data:text/plain;base64,aGVsbG8=", "input", /data:image/],
    ["a data URL without base64", "data:image/png,abc", "input", /data:image/],
  ];
  for (const [name, input, field, message] of cases400) {
    it(`400 for ${name}, naming ${field}`, async () => {
      const p = await expectProblem(await embed({ input }), 400);
      expect(p.errors?.[0]?.path).toBe(field);
      expect(p.detail).toMatch(message);
    });
  }

  it("400 for a corrupt or truncated PNG, with the decoder's reason and the index", async () => {
    const bytes = fromDataUrl(`data:,${good()}`);
    const flipped = bytes.slice();
    flipped[45] = (flipped[45] as number) ^ 0xff; // inside IDAT
    let p = await expectProblem(await embed({ input: [good(), toBase64(flipped)] }), 400);
    expect(p.errors?.[0]?.path).toBe("input[1]");
    expect(p.detail).toMatch(/CRC mismatch in IDAT/);
    p = await expectProblem(await embed({ input: [good(), good(), toBase64(bytes.subarray(0, 40))] }), 400);
    expect(p.errors?.[0]?.path).toBe("input[2]");
    expect(p.detail).toMatch(/truncated PNG/);
  });

  it("413 over 16 megapixels decoded or 16 MiB encoded", async () => {
    let p = await expectProblem(await embed({ input: [good(), toBase64(pngClaiming(5000, 4000))] }), 413);
    expect(p.errors?.[0]?.path).toBe("input[1]");
    expect(p.detail).toMatch(/5000×4000 is over the 16 megapixels max/);
    p = await expectProblem(await embed({ input: "A".repeat(23_000_000) }), 413);
    expect(p.detail).toMatch(/16 MiB/);
  });

  it("/v1/tokenize is a 400 naming the image modality", async () => {
    const res = await api("/v1/tokenize", { method: "POST", key, json: { model: MODEL, inputs: "a cat" } });
    const p = await expectProblem(res, 400);
    expect(p.errors?.[0]?.path).toBe("model");
    expect(p.detail).toMatch(/is an image encoder/);
  });

  it("a key without the embed scope is refused", async () => {
    const probeOnly = await addKey(tenantId, ["probe"]);
    await expectProblem(await embed({ input: good() }, probeOnly.secret), 403);
  });
});

describe("manifest and model info", () => {
  it("/v1/models/{ref}/info shows the modality, preprocessing and units", async () => {
    const info = await (await api(`/v1/models/${MODEL}/info`, { key })).json<Record<string, unknown>>();
    expect(info).toMatchObject({
      modality: "image",
      max_tokens: null,
      microbatch_unit: "pixels",
      input_unit: "pixel",
      preprocessing: encoderManifest(DIR).preprocessing,
    });
  });

  const bad: [string, (p: Record<string, unknown>) => Record<string, unknown>, string][] = [
    ["an unknown resize filter", (p) => ({ ...p, resize: "nearest" }), "manifest.preprocessing.resize"],
    ["mean of the wrong length", (p) => ({ ...p, mean: [0.1, 0.2] }), "manifest.preprocessing.mean"],
    ["2 channels", (p) => ({ ...p, channels: 2 }), "manifest.preprocessing.channels"],
    ["a zero std", (p) => ({ ...p, std: [0] }), "manifest.preprocessing.std"],
    ["no image_size", ({ image_size: _, ...p }) => p, "manifest.preprocessing.image_size"],
  ];
  for (const [name, patch, path] of bad) {
    it(`registration refuses an image manifest with ${name}, naming ${path}`, async () => {
      const err = await importEncoder(key, DIR, "bad-vit", (m) => ({
        ...m,
        preprocessing: patch(m.preprocessing as Record<string, unknown>),
      })).catch((e: Error) => e);
      expect(String(err)).toMatch(/^Error: import of tiny-image-encoder failed: 400/);
      expect(String(err)).toContain(path);
    });
  }

  it("registration refuses an image manifest whose inputs are not [pixel_values]", async () => {
    const err = await importEncoder(key, DIR, "bad-vit", (m) => ({ ...m, inputs: ["input_ids"] })).catch(
      (e: Error) => e,
    );
    expect(String(err)).toContain("manifest.inputs");
    expect(String(err)).toContain("pixel_values");
  });
});
