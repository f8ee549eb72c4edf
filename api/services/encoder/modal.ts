// Image and time-series inputs (decision 0005): the /v1/embeddings input forms, preprocessing to the
// feeds the manifest names, micro-batching under the memory budget, and the raw-feature baseline
// probes compare against. Text stays in inputs.ts/embed.ts.

import { ApiError, badRequest } from "../../lib/errors";
import { seriesValueProblem } from "../dataset_check_series";
import { decodeImage, ImageDecodeError, MAX_IMAGE_PIXELS } from "../image/decode";
import { poolPixels, preprocessImage } from "../image/preprocess";
import { imagePreprocessing, type Manifest, MODAL_INPUTS, seriesPreprocessing } from "../manifest";
import { MAX_BATCH_ROWS, planBatches } from "./batching";
import { type FloatFeed, runFloatBatch } from "./embed";
import { MAX_INPUTS } from "./inputs";
import { type LoadedEncoder, using } from "./sessions";

export type ModalItem = { kind: "image"; bytes: Uint8Array } | { kind: "series"; values: number[][] };

/** Encoded size limit per image (decision 0005): 16 MiB after base64 decoding. */
export const MAX_IMAGE_BYTES = 16 * 1024 * 1024;
/** Values (points × channels) per request for time-series models; 16 MiB of float32. */
export const MAX_REQUEST_SERIES_VALUES = 4 * 1024 * 1024;
/** Points per channel in the raw-feature baseline. */
export const RAW_SERIES_POINTS = 128;
/** Values in the raw-pixel baseline, at most. */
export const RAW_PIXEL_VALUES = 1024;

const tooLarge = (detail: string, path: string) =>
  new ApiError(413, "too_large", detail, { errors: [{ path, message: detail }] });
const fieldError = (path: string, message: string, fix: string) =>
  badRequest(`${path}: ${message}; ${fix}.`, [{ path, message }]);

/** Base64 (or a data URL) holds only its alphabet and line breaks; text has spaces or punctuation. */
export const looksLikeText = (s: string) => !s.startsWith("data:") && /[^A-Za-z0-9+/=_\-\r\n]/.test(s.trim());

const IMAGE_FORMS = "send a base64 PNG/JPEG string or a data:image/png;base64,… URL, or an array of them";
const seriesForms = (c: number) =>
  c === 1
    ? "send one series as number[] or several as number[][]"
    : `send one series as number[][] (${c} channel arrays) or several as number[][][]`;

/**
 * The `input` forms of decision 0005 for an image or time-series model.
 *
 * @param manifest the model's manifest (modality and preprocessing decide the forms).
 * @param input the request's `input` as parsed JSON.
 * @param field the request field, for error paths (`input`, `inputs`).
 * @returns one item per input; images hold the encoded file bytes, series `values[channel][t]`.
 * @throws ApiError 400 naming the field and modality on the wrong form, 413 on an over-size image.
 */
export function parseModalInput(manifest: Manifest, input: unknown, field = "input"): ModalItem[] {
  if (manifest.modality === "image") return parseImages(input, field);
  if (manifest.modality === "timeseries") return parseSeries(input, seriesPreprocessing(manifest).channels, field);
  throw fieldError(field, "this model is a text encoder", "send strings or token ids");
}

function checkCount(n: number, field: string) {
  if (n === 0) throw fieldError(field, "must not be empty", `send 1 to ${MAX_INPUTS} inputs`);
  if (n > MAX_INPUTS) throw fieldError(field, `at most ${MAX_INPUTS} inputs per request; got ${n}`, "split it");
}

function parseImages(input: unknown, field: string): ModalItem[] {
  const single = typeof input === "string";
  const list = single ? [input] : input;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string")) {
    throw fieldError(field, "this is an image model", IMAGE_FORMS);
  }
  checkCount(list.length, field);
  return list.map((s: string, i) => ({ kind: "image", bytes: base64Image(s, single ? field : `${field}[${i}]`) }));
}

/** A base64 string or `data:image/…;base64,` URL to bytes, with the encoded-size limit. */
function base64Image(s: string, at: string): Uint8Array {
  let b64 = s;
  if (looksLikeText(s)) {
    throw fieldError(at, "looks like text; this is an image model", IMAGE_FORMS);
  }
  if (s.startsWith("data:")) {
    const comma = s.indexOf(",");
    const meta = s.slice(5, comma);
    if (comma < 0 || !/;base64$/i.test(meta) || !/^image\//i.test(meta)) {
      throw fieldError(at, "is a data URL but not data:image/…;base64", "encode the file as data:image/png;base64,…");
    }
    b64 = s.slice(comma + 1);
  }
  if (b64.length === 0) throw fieldError(at, "must not be empty", IMAGE_FORMS);
  if (b64.length > Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 4) {
    throw tooLarge(`${at}: is over the 16 MiB limit per image; downscale or recompress it.`, at);
  }
  let bin: string;
  try {
    // atob takes standard base64 (padding optional); base64url is accepted too.
    bin = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw fieldError(at, "is not valid base64", IMAGE_FORMS);
  }
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

// Shape only: values are checked (finite, within float32) afterwards, so the error names the point.
const isNumberArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === "number");
const isMatrix = (v: unknown): v is number[][] => Array.isArray(v) && v.every(isNumberArray);

function parseSeries(input: unknown, channels: number, field: string): ModalItem[] {
  let series: number[][][];
  let single: boolean;
  if (isNumberArray(input) && channels === 1) {
    series = [[input]];
    single = true;
  } else if (isMatrix(input) && channels === 1) {
    series = input.map((s) => [s]);
    single = false;
  } else if (isMatrix(input) && channels > 1) {
    series = [input];
    single = true;
  } else if (Array.isArray(input) && input.every(isMatrix)) {
    series = input;
    single = false;
  } else {
    const what = typeof input === "string" || (Array.isArray(input) && typeof input[0] === "string") ? "text" : "";
    throw fieldError(
      field,
      `this is a ${channels}-channel time-series model${what ? " and does not take text" : ""}`,
      `${seriesForms(channels)} of finite numbers`,
    );
  }
  checkCount(series.length, field);
  let total = 0;
  return series.map((values, i) => {
    const at = single ? field : `${field}[${i}]`;
    if (values.length !== channels) {
      throw fieldError(at, `has ${values.length} channels; the model takes ${channels}`, seriesForms(channels));
    }
    const length = values[0]?.length ?? 0;
    if (length === 0) throw fieldError(at, "must not be an empty series", "send at least one point");
    const bad = values.findIndex((c) => c.length !== length);
    if (bad >= 0) {
      throw fieldError(
        `${at}[${bad}]`,
        `has ${values[bad]?.length} points, channel 0 has ${length}`,
        "give every channel the same length",
      );
    }
    for (let c = 0; c < values.length; c++) {
      const row = values[c] as number[];
      for (let t = 0; t < row.length; t++) {
        const problem = seriesValueProblem(row[t] as number);
        if (problem !== null) {
          // A univariate request names input[i][j] (or input[j]); channels add their index.
          throw fieldError(
            channels === 1 ? `${at}[${t}]` : `${at}[${c}][${t}]`,
            problem,
            "send finite float32 numbers",
          );
        }
      }
    }
    total += length * channels;
    if (total > MAX_REQUEST_SERIES_VALUES) {
      throw tooLarge(
        `${field}: more than ${MAX_REQUEST_SERIES_VALUES} values in one request (reached at ${at}); split it.`,
        field,
      );
    }
    return { kind: "series", values };
  });
}

/** The error for an item that fails to decode: 413 for over-size, else 400 with the decoder's reason. */
function decodeFailure(err: unknown, at: string): unknown {
  if (!(err instanceof ImageDecodeError)) return err;
  if (err.tooLarge) return tooLarge(`${at}: ${err.message}.`, at);
  return fieldError(at, `cannot be decoded (${err.message})`, "send a valid PNG or JPEG file");
}

function imageTensor(manifest: Manifest, item: ModalItem, at: string): Float32Array {
  if (item.kind !== "image") throw fieldError(at, "is a series, but this is an image model", IMAGE_FORMS);
  try {
    return preprocessImage(decodeImage(item.bytes, { maxPixels: MAX_IMAGE_PIXELS }), imagePreprocessing(manifest));
  } catch (err) {
    throw decodeFailure(err, at);
  }
}

/** A series clipped to `maxLength` points per channel, or 413 when truncation is off. */
function clipSeries(values: number[][], maxLength: number, truncate: boolean, at: string): number[][] {
  const length = values[0]?.length ?? 0;
  if (length <= maxLength) return values;
  if (!truncate) {
    throw tooLarge(
      `${at}: has ${length} points, over the model's max_length ${maxLength}; shorten it or send truncate: true.`,
      at,
    );
  }
  return values.map((c) => c.slice(0, maxLength));
}

/**
 * Embeds image or series items with the encoder, in input order.
 *
 * Images: decoded and preprocessed one micro-batch at a time (rows × image_size² within the pixel
 * budget), fed as `pixel_values` [B, C, S, S]. Series: clipped to max_length (or 413), padded at the
 * end to a multiple of patch_size, fed as `values` [B, C, L] and `observed` [B, L], longest first
 * under the points budget. int8 graphs with dynamic activation quantization run one row per run.
 *
 * @returns the vectors and `units`: image_size² per image, observed points × channels per series.
 */
export function embedModalItems(
  enc: LoadedEncoder,
  items: ModalItem[],
  opts: { truncate?: boolean; field?: string; maxRows?: number } = {},
): Promise<{ vectors: Float32Array[]; units: number }> {
  const field = opts.field ?? "input";
  const at = (i: number) => (items.length === 1 ? field : `${field}[${i}]`);
  const maxRows = Math.min(opts.maxRows ?? MAX_BATCH_ROWS, enc.maxRows);
  const { manifest } = enc;
  return using(enc, async () => {
    const vectors: Float32Array[] = new Array(items.length);
    if (manifest.modality === "image") {
      const p = imagePreprocessing(manifest);
      const per = p.channels * p.image_size * p.image_size;
      const rows = Math.max(1, Math.min(maxRows, Math.floor(enc.tokenBudget / (p.image_size * p.image_size))));
      for (let start = 0; start < items.length; start += rows) {
        const batch = items.slice(start, start + rows);
        const data = new Float32Array(batch.length * per);
        batch.forEach((item, r) => {
          data.set(imageTensor(manifest, item, at(start + r)), r * per);
        });
        const feeds = {
          [MODAL_INPUTS.image[0]]: { data, dims: [batch.length, p.channels, p.image_size, p.image_size] },
        };
        const out = await runFloatBatch(enc, feeds, batch.length, batch.length * p.image_size * p.image_size);
        out.forEach((v, r) => {
          vectors[start + r] = v;
        });
      }
      return { vectors, units: items.length * p.image_size * p.image_size };
    }
    if (manifest.modality !== "timeseries")
      throw new Error(`embedModalItems: ${manifest.modality} is not image or timeseries`);
    const p = seriesPreprocessing(manifest);
    const clipped = items.map((item, i) => {
      if (item.kind !== "series")
        throw fieldError(at(i), "is an image, but this is a time-series model", seriesForms(p.channels));
      return clipSeries(item.values, p.max_length, opts.truncate ?? true, at(i));
    });
    const lengths = clipped.map((v) => v[0]?.length ?? 0);
    const padded = lengths.map((n) => Math.ceil(n / p.patch_size) * p.patch_size);
    let units = 0;
    for (const batch of planBatches(padded, enc.tokenBudget, maxRows)) {
      const width = padded[batch[0] as number] as number;
      const values = new Float32Array(batch.length * p.channels * width);
      const observed = new Float32Array(batch.length * width);
      batch.forEach((i, r) => {
        const series = clipped[i] as number[][];
        const n = lengths[i] as number;
        series.forEach((channel, c) => {
          values.set(channel, (r * p.channels + c) * width);
        });
        observed.fill(1, r * width, r * width + n);
        units += n * p.channels;
      });
      // By name (the manifest check pins the names), never by the manifest's list order.
      const [valuesName, observedName] = MODAL_INPUTS.timeseries;
      const feeds: Record<string, FloatFeed> = {
        [valuesName]: { data: values, dims: [batch.length, p.channels, width] },
        [observedName]: { data: observed, dims: [batch.length, width] },
      };
      const out = await runFloatBatch(enc, feeds, batch.length, batch.length * width);
      batch.forEach((i, r) => {
        vectors[i] = out[r] as Float32Array;
      });
    }
    return { vectors, units };
  });
}

/**
 * The raw-feature baseline of decision 0005, one vector per item: an image's preprocessed pixels
 * average-pooled to at most 1024 values; a series normalized per channel (`(x - mean) / (std +
 * 1e-5)`, population std) and resampled linearly to 128 points per channel (channel-major).
 */
export function rawFeatures(manifest: Manifest, items: ModalItem[], field = "input"): Float32Array[] {
  return items.map((item, i) => {
    const at = items.length === 1 ? field : `${field}[${i}]`;
    if (manifest.modality === "image") {
      const p = imagePreprocessing(manifest);
      return poolPixels(imageTensor(manifest, item, at), p.channels, p.image_size, RAW_PIXEL_VALUES);
    }
    if (item.kind !== "series") throw fieldError(at, "is an image, but this is a time-series model", "send numbers");
    const out = new Float32Array(item.values.length * RAW_SERIES_POINTS);
    item.values.forEach((channel, c) => {
      out.set(resample(normalizeSeries(channel), RAW_SERIES_POINTS), c * RAW_SERIES_POINTS);
    });
    return out;
  });
}

/** `(x - mean) / (std + 1e-5)` with the population std, as the series graphs normalize. */
export function normalizeSeries(x: number[]): Float64Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let varSum = 0;
  for (const v of x) varSum += (v - mean) ** 2;
  const std = Math.sqrt(varSum / x.length);
  return Float64Array.from(x, (v) => (v - mean) / (std + 1e-5));
}

/** Linear interpolation to `m` points spanning the series' first to last point (constant if 1 point). */
export function resample(x: ArrayLike<number>, m: number): Float32Array {
  const n = x.length;
  const out = new Float32Array(m);
  for (let k = 0; k < m; k++) {
    const t = m === 1 || n === 1 ? 0 : (k * (n - 1)) / (m - 1);
    const j = Math.min(Math.floor(t), n - 1);
    const frac = t - j;
    const a = x[j] as number;
    out[k] = frac > 0 && j + 1 < n ? a + ((x[j + 1] as number) - a) * frac : a;
  }
  return out;
}

/** Canonical bytes for the probe embedding cache: the encoded image, or the series as JSON. */
export function modalItemKey(item: ModalItem): Uint8Array {
  return item.kind === "image" ? item.bytes : new TextEncoder().encode(JSON.stringify(item.values));
}
