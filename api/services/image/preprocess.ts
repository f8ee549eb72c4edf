// Image preprocessing, the same arithmetic as the trainer's `vision/preprocess.py` (decision 0005
// steps 2–4): channel conversion, separable antialiased bilinear resize in float64 on 0–255 values
// (rows first, then columns), normalization, float32 NCHW. Channels are converted on the fly in the
// first pass, so a large photo never exists as a float64 copy (a 16 MP RGB image would be 384 MB).

import type { DecodedImage } from "./decode";

/** The fields of a manifest's image `preprocessing` this needs (validated in manifest.ts). */
export type ImageSpec = { image_size: number; channels: 1 | 3; scale: number; mean: number[]; std: number[] };

/** ITU-R 601 luma weights; applied to floats and never rounded. */
const GREY = [0.299, 0.587, 0.114] as const;

export type AxisWeights = { lo: number[]; w: Float64Array[] };

/**
 * The resampling filter from `n` to `m` samples along one axis: for output `i`, taps `lo[i]…` with
 * normalized weights `w[i]` (triangle of half-width max(n/m, 1), PIL's / torch's antialiased
 * bilinear). For n == m it is the identity.
 */
export function aaWeights(n: number, m: number): AxisWeights {
  const scale = n / m;
  const support = Math.max(scale, 1);
  const lo: number[] = [];
  const w: Float64Array[] = [];
  for (let i = 0; i < m; i++) {
    const center = (i + 0.5) * scale;
    const a = Math.max(Math.floor(center - support + 0.5), 0);
    const b = Math.min(Math.floor(center + support + 0.5), n);
    const row = new Float64Array(Math.max(b - a, 0));
    let total = 0;
    for (let j = a; j < b; j++) {
      const v = Math.max(0, 1 - Math.abs((j - center + 0.5) / support));
      row[j - a] = v;
      total += v;
    }
    for (let k = 0; k < row.length; k++) row[k] = total !== 0 ? (row[k] as number) / total : 0;
    lo.push(a);
    w.push(row);
  }
  return { lo, w };
}

/**
 * Decoded pixels → the model's `pixel_values` for one image.
 *
 * @param img 8-bit HWC pixels with 1 or 3 channels.
 * @param spec the manifest's preprocessing (image_size S, channels C, scale, mean[C], std[C]).
 * @returns float32 [C, S, S] (NCHW without the batch axis), `(v / scale - mean[c]) / std[c]`.
 */
export function preprocessImage(img: Pick<DecodedImage, "width" | "height" | "channels" | "data">, spec: ImageSpec) {
  const { width: W, height: H, channels: src, data } = img;
  const C = spec.channels;
  const S = spec.image_size;
  // value(x, y, c) on the 0–255 scale after channel conversion (step 2).
  const value =
    src === C
      ? (p: number, c: number) => data[p * src + c] as number
      : C === 3
        ? (p: number) => data[p] as number
        : (p: number) =>
            GREY[0] * (data[p * 3] as number) +
            GREY[1] * (data[p * 3 + 1] as number) +
            GREY[2] * (data[p * 3 + 2] as number);

  // Pass 1, along rows (width W → S): tmp [H, S, C].
  const tmp = new Float64Array(H * S * C);
  if (W === S) {
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) tmp[(y * S + x) * C + c] = value(y * W + x, c);
  } else {
    const { lo, w } = aaWeights(W, S);
    for (let y = 0; y < H; y++) {
      for (let i = 0; i < S; i++) {
        const a = lo[i] as number;
        const row = w[i] as Float64Array;
        for (let c = 0; c < C; c++) {
          let sum = 0;
          for (let k = 0; k < row.length; k++) sum += (row[k] as number) * value(y * W + a + k, c);
          tmp[(y * S + i) * C + c] = sum;
        }
      }
    }
  }

  // Pass 2, along columns (height H → S), fused with step 4's normalization.
  const out = new Float32Array(C * S * S);
  const yw = H === S ? null : aaWeights(H, S);
  for (let c = 0; c < C; c++) {
    const mean = spec.mean[c] as number;
    const std = spec.std[c] as number;
    for (let k = 0; k < S; k++) {
      for (let i = 0; i < S; i++) {
        let v: number;
        if (!yw) v = tmp[(k * S + i) * C + c] as number;
        else {
          const a = yw.lo[k] as number;
          const row = yw.w[k] as Float64Array;
          v = 0;
          for (let t = 0; t < row.length; t++) v += (row[t] as number) * (tmp[((a + t) * S + i) * C + c] as number);
        }
        out[c * S * S + k * S + i] = (v / spec.scale - mean) / std;
      }
    }
  }
  return out;
}

/**
 * Average-pools preprocessed pixels [C, S, S] to at most `maxValues` numbers (the raw-feature probe
 * baseline of decision 0005): f × f windows with the smallest integer f such that
 * C × ceil(S/f)² <= maxValues; windows at the right and bottom edges are clipped, not padded.
 */
export function poolPixels(x: Float32Array, channels: number, size: number, maxValues = 1024): Float32Array {
  let f = 1;
  while (channels * Math.ceil(size / f) ** 2 > maxValues) f++;
  const s = Math.ceil(size / f);
  const out = new Float32Array(channels * s * s);
  for (let c = 0; c < channels; c++) {
    for (let by = 0; by < s; by++) {
      for (let bx = 0; bx < s; bx++) {
        let sum = 0;
        let n = 0;
        for (let y = by * f; y < Math.min((by + 1) * f, size); y++) {
          for (let xx = bx * f; xx < Math.min((bx + 1) * f, size); xx++) {
            sum += x[c * size * size + y * size + xx] as number;
            n++;
          }
        }
        out[c * s * s + by * s + bx] = sum / n;
      }
    }
  }
  return out;
}
