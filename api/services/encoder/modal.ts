// Image and time-series inputs (decision 0005) for callers that take either, such as the probes:
// the forms by the manifest's modality (image.ts, series.ts). Text stays in text.ts; embedding
// goes through embedders.ts for every modality.
import type { Manifest } from "../manifest";
import { seriesPreprocessing } from "../manifest";
import { parseImages } from "./image";
import { fieldError, type ModalItem } from "./items";
import { parseSeries } from "./series";

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
