// The work of POST /v1/probes and /v1/probes/{id}/predict: labeled inputs → cached embeddings →
// a fitted probe, its weights in R2 and its row in D1; new inputs → the stored probe's
// probabilities. Probes on inline examples (bounded by the request size) fit inside the request;
// probes that read a dataset are checked here, stored `fitting` and fitted by the work queue
// (background/probe_fit_work.ts). Knows nothing of Hono.

import { eq } from "drizzle-orm";
import { probes } from "../../db/schema";
import { newId } from "../lib/crypto";
import { conflict } from "../lib/errors";
import { requestKey, storeRequest, workError } from "./background/probe_work_chunks";
import { enqueue, type WorkMessage } from "./background/work";
import { choosePrecision, type Precision } from "./encoder/variants";
import type { Manifest } from "./manifest";
import { embedWithCache } from "./probe/embeddings";
import {
  checkExamples,
  checkProbeSize,
  DEFAULT_SPLIT,
  type Example,
  encodeLabels,
  fitProbe,
  type ProbeFit,
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
import { resolveVersion, type VersionRow } from "./registry";

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

/** The `request` column of a probe the work queue fits; the body waits in R2 under `body_key`. */
export type StoredProbeRequest = { versionId: string; ref: string; precision: Precision; body_key: string };

/** Where a queued fit stands (the `state` column); `step` counts stored chunks. */
export type ProbeFitState = {
  step: number;
  chunk_items: number;
  phase: "embedding" | "fitting" | "done";
  offset: number;
  items_done: number;
  items_total: number;
  embed_ms: number;
  cached: number;
  embedded: number;
};

/** The split and the checks that need no embedding; deterministic, so the work recomputes it. */
export type ProbePlan = {
  trainDatasetId: string | null;
  testDatasetId: string | null;
  split: { train: Example[]; test: Example[] };
  splitSpec: Record<string, unknown> | undefined;
  options: ProbeOptions;
};

export const readsDataset = (body: ProbeRequest) =>
  !Array.isArray(body.train) || (body.test !== undefined && "dataset" in body.test);

export async function planProbe(
  ctx: ProbeContext,
  version: VersionRow,
  ref: string,
  body: ProbeRequest,
): Promise<ProbePlan> {
  const train = await loadExamples(ctx, version, ref, body.train, "train");
  const testSpec = body.test ?? { split: DEFAULT_SPLIT, seed: 0 };
  const isSplit = !Array.isArray(testSpec) && "split" in testSpec;
  const test = isSplit
    ? null
    : await loadExamples(ctx, version, ref, testSpec as Exclude<typeof testSpec, { split: number }>, "test");
  const split = planSplit(train.examples, test ? test.examples : (testSpec as { split: number; seed: number }));
  const options = body.options ?? {};
  checkExamples(body.kind, split.train, split.test, options);
  checkProbeSize(body.kind, split.train.length, version.dims, options);
  return {
    trainDatasetId: train.datasetId,
    testDatasetId: test?.datasetId ?? null,
    split,
    splitSpec: isSplit ? (testSpec as Record<string, unknown>) : undefined,
    options,
  };
}

/** The columns a fitted probe stores (its weights already in R2 under `key`). */
export function fittedColumns(
  fit: ProbeFit,
  plan: ProbePlan,
  precision: Precision,
  key: string,
  embedding: { embed_ms: number; cached: number; embedded: number },
) {
  const stored: StoredProbe = {
    request: { test: plan.splitSpec, options: plan.options, precision },
    labels: fit.labels,
    hyperparameters: fit.hyperparameters,
    timings: { embed_ms: embedding.embed_ms, fit_ms: fit.fit_ms },
    embeddings: { cached: embedding.cached, embedded: embedding.embedded },
  };
  return {
    options: stored as unknown as Record<string, unknown>,
    metrics: fit.metrics as unknown as Record<string, unknown>,
    weightsKey: key,
  };
}

/**
 * Creates a probe: fitted now on inline examples, or stored `fitting` and queued when it reads a dataset.
 *
 * @param preferred the deployment's precision setting (the version's choice follows it).
 * @param chunkItems inputs per work chunk (queued fits).
 * @returns the stored row with the model's name and version number, for the view.
 * @throws ApiError 400/404/413/422 naming the request field (train, test, options.*).
 */
export async function createProbe(
  ctx: ProbeContext,
  preferred: Precision | "auto",
  body: ProbeRequest,
  queue: Queue<WorkMessage>,
  chunkItems: number,
): Promise<{ probe: ProbeRow; modelName: string; version: number }> {
  const { storage } = ctx;
  const { model, version } = await resolveVersion(ctx.db, ctx.tenantId, body.model);
  const ref = formatRef(model.name, version.version);
  const plan = await planProbe(ctx, version, ref, body);
  const precision = choosePrecision(version.manifest as Manifest, preferred);
  const { split } = plan;
  const n = split.train.length;
  const id = newId("prb");
  const common = {
    id,
    tenantId: ctx.tenantId,
    modelVersionId: version.id,
    kind: body.kind,
    trainDatasetId: plan.trainDatasetId,
    testDatasetId: plan.testDatasetId,
    nTrain: n,
    nTest: split.test.length,
  };
  if (readsDataset(body)) {
    const key = requestKey("probes", ctx.tenantId, id);
    await storeRequest(storage, key, body);
    const request: StoredProbeRequest = { versionId: version.id, ref, precision, body_key: key };
    const total = n + split.test.length;
    const state: ProbeFitState = {
      step: 0,
      chunk_items: chunkItems,
      phase: "embedding",
      offset: 0,
      items_done: 0,
      items_total: total,
      embed_ms: 0,
      cached: 0,
      embedded: 0,
    };
    const pending: Partial<StoredProbe> = {
      request: { test: plan.splitSpec, options: plan.options, precision },
      labels: encodeLabels(split.train.map((e) => e.label)).names,
    };
    const row = await insertProbe(ctx.db, {
      ...common,
      status: "fitting",
      options: pending as Record<string, unknown>,
      request: request as unknown as Record<string, unknown>,
      state: state as unknown as Record<string, unknown>,
      updatedAt: Date.now(),
    });
    try {
      await enqueue(queue, { kind: "probe_fit", tenantId: ctx.tenantId, id });
    } catch (e) {
      // Nothing will ever advance it: say so on the row rather than leave it `fitting`.
      await ctx.db
        .update(probes)
        .set({ status: "failed", error: workError(e) })
        .where(eq(probes.id, id));
      throw e;
    }
    return { probe: row, modelName: model.name, version: version.version };
  }
  const { vectors, stats } = await embedWithCache(
    storage,
    `${version.id}/${precision}`,
    [...split.train, ...split.test],
    probeInputKey,
    runtimeEmbed(storage, version, precision),
  );
  const fit = fitProbe(
    body.kind,
    { X: toMatrix(vectors.slice(0, n)), labels: split.train.map((e) => e.label) },
    { X: toMatrix(vectors.slice(n)), labels: split.test.map((e) => e.label) },
    plan.options,
  );
  const key = weightsKey(ctx.tenantId, id);
  await storeWeights(storage, key, fit.weights);
  const row = await insertProbe(ctx.db, { ...common, ...fittedColumns(fit, plan, precision, key, stats) });
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
  if (row.probe.status !== "ready") {
    throw conflict(
      `probe ${row.probe.id} is ${row.probe.status}, not ready; ${row.probe.status === "fitting" ? `poll GET /v1/probes/${row.probe.id} until it is ready` : "see its error and create it again"}.`,
      [{ path: "id", message: `probe is ${row.probe.status}` }],
    );
  }
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
