// What the modality embedders (text.ts, image.ts, series.ts) share: their interface, the
// image/series item type of decision 0005, the shapes of their errors (each names the request
// field and the fix) and the request-size checks.
import { ApiError, badRequest } from "../../lib/errors";
import type { Manifest } from "../manifest";
import type { BatchOptions, GraphOutput } from "./embed";
import type { LoadedEncoder } from "./sessions";

/** OpenAI's limit: at most 2048 inputs per request, whatever the modality. */
export const MAX_INPUTS = 2048;

/** One image (its encoded file bytes) or one series (`values[channel][t]`). */
export type ModalItem = { kind: "image"; bytes: Uint8Array } | { kind: "series"; values: number[][] };

/** 413 naming the input that is over a limit. */
export const tooLarge = (detail: string, path: string) =>
  new ApiError(413, "too_large", detail, { errors: [{ path, message: detail }] });

/** 400 as `<path>: <message>; <fix>.` with the field error `{ path, message }`. */
export const fieldError = (path: string, message: string, fix: string) =>
  badRequest(`${path}: ${message}; ${fix}.`, [{ path, message }]);

/** 1 to MAX_INPUTS items per request. */
export function checkCount(n: number, field: string) {
  if (n === 0) throw fieldError(field, "must not be empty", `send 1 to ${MAX_INPUTS} inputs`);
  if (n > MAX_INPUTS) throw fieldError(field, `at most ${MAX_INPUTS} inputs per request; got ${n}`, "split it");
}

/** Where item `i` of `count` came from: the field itself for a single input, else `field[i]`. */
export const itemPath = (field: string, count: number, i: number) => (count === 1 ? field : `${field}[${i}]`);

/** Canonical bytes for the probe embedding cache: the encoded image, or the series as JSON. */
export function modalItemKey(item: ModalItem): Uint8Array {
  return item.kind === "image" ? item.bytes : new TextEncoder().encode(JSON.stringify(item.values));
}

export type EmbedOptions = {
  /** Cut inputs over the model's length (text: max_tokens, series: max_length), else 413. */
  truncate: boolean;
  /** The deployment's overrides (EMBED_BATCH_TOKENS, EMBED_MAX_BATCH_ROWS). */
  batching?: BatchOptions;
  /** The request field errors name (`input` unless told). */
  field?: string;
  /** `logits`: read the head's output instead of the embedding (/v1/classifications). */
  output?: GraphOutput;
};

/**
 * The vectors (embeddings, or logits with `output: "logits"`) in input order and the units
 * `usage.prompt_tokens` counts (tokens, pixels, points).
 */
export type Embedded = { vectors: Float32Array[]; units: number };

/**
 * What /v1/embeddings needs of one modality: `parse` checks the request's `input` forms before
 * any model is loaded (a wrong request costs no ORT session) and returns the items; `embed` runs
 * them through the loaded encoder.
 */
export type Embedder<Items> = {
  parse(manifest: Manifest, input: unknown, field: string): Items;
  embed(enc: LoadedEncoder, items: Items, opts: EmbedOptions): Promise<Embedded>;
};
