// Image inputs (decision 0005): base64 PNG/JPEG strings or data URLs, decoded and preprocessed
// exactly as the manifest says, fed as `pixel_values` [B, C, S, S] in micro-batches under the
// pixel budget. `usage` counts image_size² per image.
import { decodeImage, ImageDecodeError, MAX_IMAGE_PIXELS } from "../image/decode";
import { preprocessImage } from "../image/preprocess";
import { imagePreprocessing, type Manifest, MODAL_INPUTS } from "../manifest";
import { MAX_BATCH_ROWS } from "./batching";
import { type GraphOutput, runFloatBatch } from "./embed";
import { checkCount, type Embedder, fieldError, itemPath, type ModalItem, tooLarge } from "./items";
import { type LoadedEncoder, using } from "./sessions";

/** Encoded size limit per image (decision 0005): 16 MiB after base64 decoding. */
export const MAX_IMAGE_BYTES = 16 * 1024 * 1024;

export const IMAGE_FORMS = "send a base64 PNG/JPEG string or a data:image/png;base64,… URL, or an array of them";

/** Base64 (or a data URL) holds only its alphabet and line breaks; text has spaces or punctuation. */
export const looksLikeText = (s: string) => !s.startsWith("data:") && /[^A-Za-z0-9+/=_\-\r\n]/.test(s.trim());

/** An image model's `input`: one base64 string or data URL, or an array of them, as encoded bytes. */
export function parseImages(input: unknown, field: string): ModalItem[] {
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

/** The error for an item that fails to decode: 413 for over-size, else 400 with the decoder's reason. */
function decodeFailure(err: unknown, at: string): unknown {
  if (!(err instanceof ImageDecodeError)) return err;
  if (err.tooLarge) return tooLarge(`${at}: ${err.message}.`, at);
  return fieldError(at, `cannot be decoded (${err.message})`, "send a valid PNG or JPEG file");
}

/** One image item decoded and preprocessed to the model's input, [C, S, S]; errors name `at`. */
export function imageTensor(manifest: Manifest, item: ModalItem, at: string): Float32Array {
  if (item.kind !== "image") throw fieldError(at, "is a series, but this is an image model", IMAGE_FORMS);
  try {
    return preprocessImage(decodeImage(item.bytes, { maxPixels: MAX_IMAGE_PIXELS }), imagePreprocessing(manifest));
  } catch (err) {
    throw decodeFailure(err, at);
  }
}

/**
 * Embeds image items in input order, decoded and preprocessed one micro-batch at a time (rows ×
 * image_size² within the pixel budget). int8 graphs with dynamic activation quantization run one
 * row per run (the encoder's `maxRows`).
 *
 * @returns the vectors and `units`: image_size² per image.
 */
export function embedImages(
  enc: LoadedEncoder,
  items: ModalItem[],
  opts: { field?: string; maxRows?: number; output?: GraphOutput } = {},
): Promise<{ vectors: Float32Array[]; units: number }> {
  const field = opts.field ?? "input";
  const maxRows = Math.min(opts.maxRows ?? MAX_BATCH_ROWS, enc.maxRows);
  const { manifest } = enc;
  return using(enc, async () => {
    const vectors: Float32Array[] = new Array(items.length);
    const p = imagePreprocessing(manifest);
    const per = p.channels * p.image_size * p.image_size;
    const rows = Math.max(1, Math.min(maxRows, Math.floor(enc.tokenBudget / (p.image_size * p.image_size))));
    for (let start = 0; start < items.length; start += rows) {
      const batch = items.slice(start, start + rows);
      const data = new Float32Array(batch.length * per);
      batch.forEach((item, r) => {
        data.set(imageTensor(manifest, item, itemPath(field, items.length, start + r)), r * per);
      });
      const feeds = {
        [MODAL_INPUTS.image[0]]: { data, dims: [batch.length, p.channels, p.image_size, p.image_size] },
      };
      const units = batch.length * p.image_size * p.image_size;
      const out = await runFloatBatch(enc, feeds, batch.length, units, opts.output);
      out.forEach((v, r) => {
        vectors[start + r] = v;
      });
    }
    return { vectors, units: items.length * p.image_size * p.image_size };
  });
}

export const imageEmbedder: Embedder<ModalItem[]> = {
  parse: (_manifest, input, field) => parseImages(input, field),
  embed: (enc, items, opts) =>
    embedImages(enc, items, { field: opts.field, maxRows: opts.batching?.maxRows, output: opts.output }),
};
