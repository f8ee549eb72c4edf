// The per-request choices of /v1/embeddings that depend on the model version: Matryoshka
// `dimensions` and the weights' `precision`. Each refusal names the field and what the version has.
import { badRequest } from "../../lib/errors";
import type { Manifest } from "../manifest";
import { choosePrecision, type Precision } from "./variants";

/** `dimensions` is allowed only for Matryoshka-trained models, and only at a trained size. */
export function checkDimensions(manifest: Manifest, ref: string, dimensions?: number) {
  if (dimensions === undefined || dimensions === manifest.dims) return;
  const trained = manifest.matryoshka_dims ?? [];
  if (trained.length === 0) {
    throw badRequest(
      `dimensions: ${ref} was not trained for shortened embeddings (no matryoshka_dims in its manifest); omit dimensions.`,
      [{ path: "dimensions", message: "the model was not trained for Matryoshka dimensions" }],
    );
  }
  if (!trained.includes(dimensions)) {
    const allowed = [...trained, manifest.dims].sort((a, b) => a - b).join(", ");
    throw badRequest(`dimensions: ${ref} was trained for ${allowed}; got ${dimensions}.`, [
      { path: "dimensions", message: `must be one of ${allowed}` },
    ]);
  }
}

/**
 * The precision a request runs at: an explicit one is honoured (400 when the version lacks it);
 * `auto` takes the deployment's preference (EMBED_PRECISION) where the version has that variant,
 * else int8 when it has int8 weights.
 */
export function requestPrecision(
  manifest: Manifest,
  ref: string,
  requested: Precision | "auto",
  preferred: Precision | "auto",
): Precision {
  const precision = requested !== "auto" ? requested : choosePrecision(manifest, preferred);
  if (!(precision in manifest.variants)) {
    throw badRequest(
      `precision: ${ref} has no ${precision} weights (it has: ${Object.keys(manifest.variants).join(", ")}).`,
      [{ path: "precision", message: `no ${precision} variant` }],
    );
  }
  return precision;
}
