// The one request path /v1/embeddings and /v1/classifications share: resolve the model, check the
// version-dependent options, parse `input` by the manifest's modality (before any session loads,
// so a wrong request costs no ORT session), pick the precision, get the session and run the
// modality's embedder, reading the embedding or the head's logits.

import type { Db } from "../../db";
import { metrics } from "../../lib/metrics";
import type { Settings } from "../../settings";
import type { Manifest } from "../manifest";
import { formatRef } from "../refs";
import { resolveVersion } from "../registry";
import { admit, measured } from "./admission";
import type { GraphOutput } from "./embed";
import { embedderFor } from "./embedders";
import { fieldError, MAX_INPUTS } from "./items";
import { requestPrecision } from "./options";
import { type ArtifactReader, getEncoder, type Precision } from "./sessions";

export type EncodeRequest = { model: string; input: unknown; truncate: boolean; precision: Precision | "auto" };

/** What a request spent (ms), as TEI reports it: `x-compute-time`, `x-queue-time`, `x-inference-time`. */
export type EncodeTimings = { computeMs: number; queueMs: number; inferenceMs: number };

/** The timing headers of a served request (whole milliseconds). */
export const timingHeaders = (t: EncodeTimings): Record<string, string> => ({
  "x-compute-time": String(Math.round(t.computeMs)),
  "x-queue-time": String(Math.round(t.queueMs)),
  "x-inference-time": String(Math.round(t.inferenceMs)),
});

/**
 * Runs a request's inputs through a version.
 *
 * @param check version-dependent request checks (Matryoshka `dimensions`, a head), run once the
 *   version is resolved and before the input is parsed; they throw the refusal.
 * @returns the ref served (`name@v`), its manifest, the precision run, one row per input in input
 *   order (embeddings, or logits with `output: "logits"`), the units `usage` counts and the timings.
 * @throws ApiError 503 / 429 with Retry-After when the encoder's line is full or the tenant is over
 *   its token rate (admission.ts).
 */
export async function encodeRequest(
  ctx: { db: Db; storage: ArtifactReader; settings: Settings },
  tenantId: string,
  req: EncodeRequest,
  output: GraphOutput,
  check: (manifest: Manifest, ref: string) => void = () => {},
): Promise<{
  ref: string;
  manifest: Manifest;
  precision: Precision;
  vectors: Float32Array[];
  units: number;
  timings: EncodeTimings;
}> {
  const started = Date.now();
  if (Array.isArray(req.input) && req.input.length === 0) {
    throw fieldError("input", "must not be empty", `send 1 to ${MAX_INPUTS} inputs`);
  }
  const { model, version } = await resolveVersion(ctx.db, tenantId, req.model, { cached: true });
  const ref = formatRef(model.name, version.version);
  const manifest = version.manifest as Manifest;
  check(manifest, ref);
  const embedder = embedderFor(manifest.modality);
  const items = embedder.parse(manifest, req.input, "input");
  const precision = requestPrecision(manifest, ref, req.precision, ctx.settings.precision);
  // Admitted only once the request is known to be valid: a malformed one gets its 4xx, not a 503.
  const place = admit(tenantId, ctx.settings.admission);
  let units = 0;
  const spent = { queueMs: 0, inferenceMs: 0 };
  try {
    const enc = await getEncoder(ctx.storage, { id: version.id, manifest, files: version.files }, precision);
    const done = await measured(spent, () =>
      embedder.embed(enc, items, { truncate: req.truncate, batching: ctx.settings.batching, output }),
    );
    units = done.units;
    metrics.tokens.inc({ precision }, units);
    metrics.inputs.inc({ precision }, done.vectors.length);
    const timings = { computeMs: Date.now() - started, ...spent };
    return { ref, manifest, precision, vectors: done.vectors, units, timings };
  } finally {
    place.release(units);
  }
}
