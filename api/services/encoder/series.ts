// Time-series inputs (decision 0005): number arrays in the channel layout the manifest says, clipped
// to max_length (or 413), padded at the end to a multiple of patch_size and fed as `values`
// [B, C, L] and `observed` [B, L], longest first under the points budget. `usage` counts observed
// points × channels.
import { seriesValueProblem } from "../dataset_check_series";
import { MODAL_INPUTS, seriesPreprocessing } from "../manifest";
import { MAX_BATCH_ROWS, planBatches } from "./batching";
import { type FloatFeed, type GraphOutput, runFloatBatch } from "./embed";
import { checkCount, type Embedder, fieldError, itemPath, type ModalItem, tooLarge } from "./items";
import { type LoadedEncoder, using } from "./sessions";

/** Values (points × channels) per request for time-series models; 16 MiB of float32. */
export const MAX_REQUEST_SERIES_VALUES = 4 * 1024 * 1024;

export const seriesForms = (c: number) =>
  c === 1
    ? "send one series as number[] or several as number[][]"
    : `send one series as number[][] (${c} channel arrays) or several as number[][][]`;

// Shape only: values are checked (finite, within float32) afterwards, so the error names the point.
const isNumberArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === "number");
const isMatrix = (v: unknown): v is number[][] => Array.isArray(v) && v.every(isNumberArray);

/**
 * A `channels`-channel model's `input`: one series or several, each `values[channel][t]`, every
 * channel of equal length and every value a finite float32; at most MAX_REQUEST_SERIES_VALUES in all.
 */
export function parseSeries(input: unknown, channels: number, field: string): ModalItem[] {
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
 * Embeds series items in input order (see the file comment). int8 graphs with dynamic activation
 * quantization run one row per run (the encoder's `maxRows`).
 *
 * @returns the vectors and `units`: observed points × channels per series, after clipping.
 */
export function embedSeries(
  enc: LoadedEncoder,
  items: ModalItem[],
  opts: { truncate?: boolean; field?: string; maxRows?: number; output?: GraphOutput } = {},
): Promise<{ vectors: Float32Array[]; units: number }> {
  const field = opts.field ?? "input";
  const maxRows = Math.min(opts.maxRows ?? MAX_BATCH_ROWS, enc.maxRows);
  const p = seriesPreprocessing(enc.manifest);
  return using(enc, async () => {
    const vectors: Float32Array[] = new Array(items.length);
    const clipped = items.map((item, i) => {
      const at = itemPath(field, items.length, i);
      if (item.kind !== "series")
        throw fieldError(at, "is an image, but this is a time-series model", seriesForms(p.channels));
      return clipSeries(item.values, p.max_length, opts.truncate ?? true, at);
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
      const out = await runFloatBatch(enc, feeds, batch.length, batch.length * width, opts.output);
      batch.forEach((i, r) => {
        vectors[i] = out[r] as Float32Array;
      });
    }
    return { vectors, units };
  });
}

export const seriesEmbedder: Embedder<ModalItem[]> = {
  parse: (manifest, input, field) => parseSeries(input, seriesPreprocessing(manifest).channels, field),
  embed: (enc, items, opts) =>
    embedSeries(enc, items, {
      truncate: opts.truncate,
      field: opts.field,
      maxRows: opts.batching?.maxRows,
      output: opts.output,
    }),
};
