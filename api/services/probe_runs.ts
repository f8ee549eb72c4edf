// The work of POST /v1/probes and /v1/probes/{id}/predict: labeled inputs → cached embeddings →
// a fitted probe, its weights in R2 and its row in D1; new inputs → the stored probe's
// probabilities. Knows nothing of Hono.

import { newId } from "../lib/crypto";
import { choosePrecision, type Precision } from "./encoder/sessions";
import type { Manifest } from "./manifest";
import { embedWithCache } from "./probe/embeddings";
import {
  checkExamples,
  DEFAULT_SPLIT,
  fitProbe,
  type ProbeInput,
  type ProbeKind,
  type ProbeOptions,
  planSplit,
  predictFromWeights,
  toMatrix,
} from "./probe/fit";
import {
  insertProbe,
  type LabeledSource,
  loadExamples,
  loadWeights,
  type ProbeContext,
  type ProbeRow,
  probeInputKey,
  runtimeEmbed,
  storeWeights,
  weightsKey,
} from "./probes";
import { formatRef } from "./refs";
import { resolveVersion } from "./registry";

export type ProbeRequest = {
  model: string;
  kind: ProbeKind;
  train: LabeledSource;
  test?: LabeledSource | { split: number; seed: number };
  options?: ProbeOptions;
};

/** What the `options` column holds besides the caller's options. */
export type StoredProbe = {
  request: Record<string, unknown>;
  labels: string[];
  hyperparameters: Record<string, unknown>;
  timings: { embed_ms: number; fit_ms: number };
  embeddings: { cached: number; embedded: number };
};

/**
 * Fits and stores a probe.
 *
 * @param preferred the deployment's precision setting (the version's choice follows it).
 * @returns the stored row with the model's name and version number, for the view.
 * @throws ApiError 400/404/413/422 naming the request field (train, test, options.*).
 */
export async function createProbe(
  ctx: ProbeContext,
  preferred: Precision | "auto",
  body: ProbeRequest,
): Promise<{ probe: ProbeRow; modelName: string; version: number }> {
  const { storage } = ctx;
  const { model, version } = await resolveVersion(ctx.db, ctx.tenantId, body.model);
  const ref = formatRef(model.name, version.version);
  const train = await loadExamples(ctx, version, ref, body.train, "train");
  const testSpec = body.test ?? { split: DEFAULT_SPLIT, seed: 0 };
  const isSplit = !Array.isArray(testSpec) && "split" in testSpec;
  const test = isSplit
    ? null
    : await loadExamples(ctx, version, ref, testSpec as Exclude<typeof testSpec, { split: number }>, "test");
  const split = planSplit(train.examples, test ? test.examples : (testSpec as { split: number; seed: number }));
  const options = body.options ?? {};
  checkExamples(body.kind, split.train, split.test, options);

  const precision = choosePrecision(version.manifest as Manifest, preferred);
  const { vectors, stats } = await embedWithCache(
    storage,
    `${version.id}/${precision}`,
    [...split.train, ...split.test],
    probeInputKey,
    runtimeEmbed(storage, version, precision),
  );
  const n = split.train.length;
  const fit = fitProbe(
    body.kind,
    { X: toMatrix(vectors.slice(0, n)), labels: split.train.map((e) => e.label) },
    { X: toMatrix(vectors.slice(n)), labels: split.test.map((e) => e.label) },
    options,
  );
  const id = newId("prb");
  const key = weightsKey(ctx.tenantId, id);
  await storeWeights(storage, key, fit.weights);
  const stored: StoredProbe = {
    request: { test: isSplit ? testSpec : undefined, options, precision },
    labels: fit.labels,
    hyperparameters: fit.hyperparameters,
    timings: { embed_ms: stats.embed_ms, fit_ms: fit.fit_ms },
    embeddings: { cached: stats.cached, embedded: stats.embedded },
  };
  const row = await insertProbe(ctx.db, {
    id,
    tenantId: ctx.tenantId,
    modelVersionId: version.id,
    kind: body.kind,
    trainDatasetId: train.datasetId,
    testDatasetId: test?.datasetId ?? null,
    options: stored as unknown as Record<string, unknown>,
    metrics: fit.metrics as unknown as Record<string, unknown>,
    weightsKey: key,
    nTrain: split.train.length,
    nTest: split.test.length,
  });
  return { probe: row, modelName: model.name, version: version.version };
}

/** A stored probe's row as `findProbe` returns it. */
type FoundProbe = { probe: ProbeRow; version_row: Parameters<typeof runtimeEmbed>[1] };

/**
 * Class probabilities (n × K, in the probe's label order) for parsed inputs, embedded with the
 * precision the probe was fitted on.
 */
export async function predictProbe(
  ctx: Pick<ProbeContext, "storage">,
  row: FoundProbe,
  input: ProbeInput[],
): Promise<{ labels: string[]; P: Float64Array }> {
  const { storage } = ctx;
  const weights = await loadWeights(storage, row.probe.weightsKey as string);
  const stored = (row.probe.options ?? {}) as { request?: { precision?: Precision } };
  // The probe was fitted on one precision's embeddings; predict with the same one.
  const precision = stored.request?.precision ?? choosePrecision(row.version_row.manifest as Manifest);
  const { vectors } = await embedWithCache(
    storage,
    `${row.version_row.id}/${precision}`,
    input.map((x, i) => ({ input: x, at: input.length === 1 ? "input" : `input[${i}]` })),
    probeInputKey,
    runtimeEmbed(storage, row.version_row, precision),
  );
  return { labels: weights.labels, P: predictFromWeights(weights, toMatrix(vectors)) };
}
