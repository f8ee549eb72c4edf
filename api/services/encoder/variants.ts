// What a version's variants need at the edge, from the manifest alone: which precision to run,
// whether our int8 kernel serves it, how many bytes it holds, its micro-batch budget and whether it
// fits the isolate. No runtime state: sessions.ts loads and caches what these size.
import { imagePreprocessing, type Manifest, seriesPreprocessing } from "../manifest";
import { fitsWasmTarget, MAX_BATCH_ROWS, tokenActivationBytes, tokenBudget, WASM_PEAK_TARGET_BYTES } from "./batching";

export type Precision = "fp32" | "int8";

/** The variant to run: `preferred` when the version has it (a deployment default), else int8, else fp32. */
export function choosePrecision(manifest: Manifest, preferred?: Precision | "auto"): Precision {
  const has = (p: Precision) => p in manifest.variants;
  if (preferred && preferred !== "auto" && has(preferred)) return preferred;
  return has("int8") ? "int8" : "fp32";
}

export function variantBytes(manifest: Manifest, precision: Precision): number {
  const v = manifest.variants[precision];
  if (!v) return 0;
  const size = (f?: string) => (f ? (manifest.files[f]?.bytes ?? 0) : 0);
  return size(v.model) + size(v.data) + size("tokenizer.json");
}

/** What serving this variant holds: the kernel file when a kernel serves it, else the graph's bytes. */
export function servedBytes(manifest: Manifest, precision: Precision): number {
  const kernel = manifest.variants[precision]?.kernel;
  if (!kernel || !usesKernel(manifest, precision)) return variantBytes(manifest, precision);
  return (manifest.files[kernel]?.bytes ?? 0) + (manifest.files["tokenizer.json"]?.bytes ?? 0);
}

/**
 * Whether our own kernel serves this variant: the exporter wrote one (only for BERT-family text
 * encoders whose kernel passed the int8 parity gates) and the embedding is what is asked for
 * (a fine-tuned head's logits need the graph).
 */
export function usesKernel(manifest: Manifest, precision: Precision): boolean {
  const v = manifest.variants[precision];
  return Boolean(v?.kernel) && manifest.modality === "text" && manifest.normalize && !manifest.head;
}

/** ORT's own WASM heap before any model (batching.ts measures the same 16 MiB). */
const ORT_BASE_BYTES = 16 * 1024 * 1024;

/**
 * Pixels (rows × image_size²) one ORT run of an image encoder may hold: the WASM room the weights
 * leave under the 96 MiB target, divided by an activation estimate of 8 × dims floats per input
 * pixel (a small ResNet's stages hold a few feature maps whose width × area per pixel stays within
 * that; a ViT's patch tokens cost less) plus the input. At least one image, at most MAX_BATCH_ROWS.
 */
export function imagePixelBudget(
  shape: { dims: number; size: number; channels: number; weightBytes: number },
  override?: number,
): number {
  const pixels = shape.size * shape.size;
  if (override && Number.isFinite(override) && override > 0) return Math.max(Math.floor(override), pixels);
  const perPixel = Math.max(shape.dims, 64) * 4 * 8 + shape.channels * 4;
  const room = WASM_PEAK_TARGET_BYTES - ORT_BASE_BYTES - shape.weightBytes;
  const rows = Math.min(Math.max(Math.floor(room / (perPixel * pixels)), 1), MAX_BATCH_ROWS);
  return rows * pixels;
}

/**
 * The micro-batch budget, in the modality's unit: padded tokens (text), padded points (time series:
 * rows × padded length), pixels (images: rows × image_size²). `override` (EMBED_BATCH_TOKENS) is
 * taken in that unit.
 */
export function budgetFor(manifest: Manifest, precision: Precision, override?: number): number {
  const weightBytes = variantBytes(manifest, precision);
  if (manifest.modality === "timeseries") {
    // The series transformer's tokens are patches: size the budget in patches, count it in points.
    const p = seriesPreprocessing(manifest);
    const patches = tokenBudget({ dims: manifest.dims, maxTokens: p.max_length / p.patch_size, weightBytes });
    return override && Number.isFinite(override) && override > 0 ? Math.floor(override) : patches * p.patch_size;
  }
  if (manifest.modality === "image") {
    const p = imagePreprocessing(manifest);
    return imagePixelBudget({ dims: manifest.dims, size: p.image_size, channels: p.channels, weightBytes }, override);
  }
  return tokenBudget({ dims: manifest.dims, maxTokens: manifest.max_tokens ?? 512, weightBytes }, override);
}

/**
 * Whether a variant can be loaded and run once inside the isolate: its bytes (weights, graph,
 * tokenizer) plus ORT's base heap plus one smallest useful run (one max_tokens sequence, one image,
 * one max_length series) within the 96 MiB WASM target of the 128 MB isolate. all-MiniLM-L6-v2's
 * fp32 variant (≈ 90 MB of weights) does not; its int8 variant (≈ 23 MB) does.
 */
export function fitsIsolate(manifest: Manifest, precision: Precision): { fits: boolean; bytes: number } {
  const bytes = variantBytes(manifest, precision);
  let activation: number;
  if (manifest.modality === "image") {
    const p = imagePreprocessing(manifest);
    activation = p.image_size * p.image_size * (Math.max(manifest.dims, 64) * 4 * 8 + p.channels * 4);
  } else if (manifest.modality === "timeseries") {
    const p = seriesPreprocessing(manifest);
    const patches = p.max_length / p.patch_size;
    activation = patches * tokenActivationBytes({ dims: manifest.dims, maxTokens: patches });
  } else {
    const maxTokens = manifest.max_tokens ?? 512;
    activation = maxTokens * tokenActivationBytes({ dims: manifest.dims, maxTokens });
  }
  return { fits: fitsWasmTarget(bytes, activation), bytes };
}
