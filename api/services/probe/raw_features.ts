// The raw-feature baseline of decision 0005: what an evaluation fits next to each image or series
// model, from the inputs alone, to show what the encoder adds.

import { imageTensor } from "../encoder/image";
import { fieldError, itemPath, type ModalItem } from "../encoder/items";
import { poolPixels } from "../image/preprocess";
import { imagePreprocessing, type Manifest } from "../manifest";

/** Points per channel in the raw-feature baseline. */
export const RAW_SERIES_POINTS = 128;
/** Values in the raw-pixel baseline, at most. */
export const RAW_PIXEL_VALUES = 1024;

/**
 * One vector per item: an image's preprocessed pixels average-pooled to at most 1024 values; a
 * series normalized per channel (`(x - mean) / (std + 1e-5)`, population std) and resampled
 * linearly to 128 points per channel (channel-major).
 */
export function rawFeatures(manifest: Manifest, items: ModalItem[], field = "input"): Float32Array[] {
  return items.map((item, i) => {
    const at = itemPath(field, items.length, i);
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
