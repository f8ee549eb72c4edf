// POST /v1/evaluations: several model versions (and fine-tuned heads) scored on one labeled set,
// split once, next to a raw-feature baseline. The request is checked here, synchronously, and
// stored; the work queue embeds and fits (background/evaluation_work.ts, which reuses the plan and
// the scoring below). Knows nothing of Hono.
import { eq } from "drizzle-orm";
import { evaluations } from "../../db/schema";
import type { Db } from "../db";
import { newId } from "../lib/crypto";
import { badRequest, unprocessable } from "../lib/errors";
import { requestKey, storeRequest, workError } from "./background/probe_work_chunks";
import { enqueue, type WorkMessage } from "./background/work";
import { softmax } from "./encoder/classify";
import type { GraphOutput } from "./encoder/embed";
import type { ModalItem } from "./encoder/items";
import { choosePrecision, type Precision } from "./encoder/variants";
import { type Head, type Manifest, seriesPreprocessing } from "./manifest";
import { type BaselineKind, type BaselineResult, rawFeatureBaselineSteps, tfidfBaselineSteps } from "./probe/baseline";
import { DEFAULT_EVALUATION_KINDS, headResult, type KindResult } from "./probe/evaluate";
import {
  checkExamples,
  DEFAULT_SPLIT,
  type Example,
  encodeLabels,
  type ProbeKind,
  type ProbeOptions,
  planSplit,
} from "./probe/fit";
import { rawFeatures } from "./probe/raw_features";
import { runYielding } from "./probe/steps";
import { type LabeledSource, loadExamples, type ProbeContext, readdress } from "./probes";
import { formatRef } from "./refs";
import { resolveVersion, type VersionRow } from "./registry";

export type EvaluationRequest = {
  models: string[];
  data: LabeledSource;
  test?: LabeledSource | { split: number; seed: number };
  kinds?: ProbeKind[];
  options?: ProbeOptions;
};

type Entry = { name: string; version: VersionRow };
/** A model as the work runs it: the version the request resolved and the precision chosen then. */
export type EvaluationModel = { name: string; versionId: string; precision: Precision };
/** The `request` column: what the consumer works from (the body itself waits in R2 under `body_key`). */
export type StoredEvaluationRequest = { models: EvaluationModel[]; body_key: string };

/** One embedding pass of the work: model `model`'s embeddings of every input, or its head's logits of the test inputs. */
export type PassPlan = { model: number; output: GraphOutput; total: number };

/** Where the work stands (the `state` column); `step` counts stored chunks, so a duplicate message finds it moved on. */
export type EvaluationState = {
  step: number;
  chunk_items: number;
  phase: "embedding" | "fitting" | "done";
  pass: number;
  offset: number;
  passes: PassPlan[];
  /** Per model: embedding time and counts summed over its chunks, and its results once fitted. */
  models: {
    name: string;
    embed_ms: number;
    head_ms: number;
    cached: number;
    embedded: number;
    results: KindResult[] | null;
  }[];
  items_done: number;
  items_total: number;
};

/** The split and everything derived from it; deterministic, so every chunk recomputes the same one. */
export type EvaluationPlan = {
  datasetId: string | null;
  testDatasetId: string | null;
  split: { train: Example[]; test: Example[] };
  splitSpec: Record<string, unknown> | null;
  options: ProbeOptions;
  kinds: ProbeKind[];
  /** Train then test examples: the order every pass embeds in. */
  inputs: Example[];
  names: string[];
};

/**
 * Checks an evaluation, stores it as `running` and queues its work.
 *
 * @param preferred the deployment's precision setting (each version's choice follows it).
 * @param chunkItems inputs per work chunk.
 * @returns the stored row.
 * @throws ApiError 400/404/413/422 naming the request field (models[i], data, test, options.*).
 */
export async function startEvaluation(
  ctx: ProbeContext,
  preferred: Precision | "auto",
  body: EvaluationRequest,
  queue: Queue<WorkMessage>,
  chunkItems: number,
): Promise<typeof evaluations.$inferSelect> {
  const versions = await resolveModels(ctx.db, ctx.tenantId, body.models);
  const plan = await planEvaluation(ctx, versions, body);
  const passes: PassPlan[] = versions.flatMap(({ version }, model) => [
    { model, output: "embedding" as const, total: plan.inputs.length },
    ...((version.manifest as Manifest).head
      ? [{ model, output: "logits" as const, total: plan.split.test.length }]
      : []),
  ]);
  const state: EvaluationState = {
    step: 0,
    chunk_items: chunkItems,
    phase: "embedding",
    pass: 0,
    offset: 0,
    passes,
    models: versions.map(({ name }) => ({ name, embed_ms: 0, head_ms: 0, cached: 0, embedded: 0, results: null })),
    items_done: 0,
    items_total: passes.reduce((t, p) => t + p.total, 0),
  };
  const id = newId("evl");
  const key = requestKey("evaluations", ctx.tenantId, id);
  await storeRequest(ctx.storage, key, body);
  const request: StoredEvaluationRequest = {
    models: versions.map(({ name, version }) => ({
      name,
      versionId: version.id,
      precision: choosePrecision(version.manifest as Manifest, preferred),
    })),
    body_key: key,
  };
  const [row] = await ctx.db
    .insert(evaluations)
    .values({
      id,
      tenantId: ctx.tenantId,
      datasetId: plan.datasetId,
      modelRefs: versions.map((v) => v.name),
      status: "running",
      request: request as unknown as Record<string, unknown>,
      state: state as unknown as Record<string, unknown>,
      // What is known before any embedding: the split's labels and sizes.
      results: {
        labels: plan.names,
        n_train: plan.split.train.length,
        n_test: plan.split.test.length,
        split: plan.splitSpec,
        kinds: plan.kinds,
      },
      updatedAt: Date.now(),
    })
    .returning();
  if (!row) throw new Error("insert returned no row");
  try {
    await enqueue(queue, { kind: "evaluation", tenantId: ctx.tenantId, id });
  } catch (e) {
    // Nothing will ever advance it: say so on the row rather than leave it `running`.
    await ctx.db
      .update(evaluations)
      .set({ status: "failed", error: workError(e), completedAt: Date.now() })
      .where(eq(evaluations.id, id));
    throw e;
  }
  return row;
}

/**
 * Loads the examples, splits them and runs every check that needs no embedding.
 *
 * @throws ApiError naming data, test, options.* or models[i] (a head lacking the set's labels).
 */
export async function planEvaluation(
  ctx: ProbeContext,
  versions: Entry[],
  body: EvaluationRequest,
): Promise<EvaluationPlan> {
  const lead = versions[0] as Entry;
  const data = await loadExamples(ctx, lead.version, lead.name, body.data, "data");
  const testSpec = body.test ?? { split: DEFAULT_SPLIT, seed: 0 };
  const isSplit = !Array.isArray(testSpec) && "split" in testSpec;
  const test = isSplit
    ? null
    : await loadExamples(ctx, lead.version, lead.name, testSpec as Exclude<typeof testSpec, { split: number }>, "test");
  const split = planSplit(data.examples, test ? test.examples : (testSpec as { split: number; seed: number }));
  const options = body.options ?? {};
  // The baseline always fits a linear probe, whatever `kinds` holds.
  checkExamples("linear", split.train, split.test, options);
  const names = encodeLabels(split.train.map((e) => e.label)).names;
  checkHeads(versions, names);
  return {
    datasetId: data.datasetId,
    testDatasetId: test?.datasetId ?? null,
    split,
    splitSpec: isSplit ? (testSpec as Record<string, unknown>) : null,
    options,
    kinds: body.kinds ?? DEFAULT_EVALUATION_KINDS,
    inputs: [...split.train, ...split.test],
    names,
  };
}

/** The listed versions, each once, all reading one input kind; errors name `models[i]`. */
export async function resolveModels(db: Db, tenantId: string, refs: string[]): Promise<Entry[]> {
  const versions: Entry[] = [];
  for (const [i, ref] of refs.entries()) {
    const { model, version } = await resolveVersion(db, tenantId, ref);
    const name = formatRef(model.name, version.version);
    const first = versions[0];
    if (first && inputsOf(first.version) !== inputsOf(version)) {
      throw unprocessable(
        `models[${i}]: ${name} takes ${inputsOf(version)}, but ${first.name} takes ${inputsOf(first.version)}; compare models of one input kind.`,
        [{ path: `models[${i}]`, message: `must take ${inputsOf(first.version)} like models[0]` }],
      );
    }
    if (versions.some((v) => v.version.id === version.id)) {
      throw badRequest(`models[${i}]: ${ref} is ${name} again; list each version once.`, [
        { path: `models[${i}]`, message: "duplicate version" },
      ]);
    }
    versions.push({ name, version });
  }
  return versions;
}

/** A fine-tuned head must know every label of the set; checked before any input is embedded. */
function checkHeads(versions: Entry[], names: string[]) {
  versions.forEach(({ name, version }, i) => {
    const head = (version.manifest as Manifest).head;
    const missing = head ? names.filter((l) => !head.labels.includes(l)) : [];
    if (missing.length > 0) {
      throw unprocessable(
        `models[${i}]: ${name}'s head predicts ${JSON.stringify(head?.labels)}, not the set's ${missing.map((l) => JSON.stringify(l)).join(", ")}; compare a version fine-tuned on these labels.`,
        [{ path: `models[${i}]`, message: "its head lacks labels of the data" }],
      );
    }
  });
}

/** A fine-tuned version scored by its own head on the test inputs, from the logits the work stored. */
export function scoreHead(logits: Float32Array[], head: Head, plan: EvaluationPlan, ms: number): KindResult {
  const K = head.labels.length;
  const P = new Float64Array(logits.length * K);
  logits.forEach((l, i) => {
    P.set(softmax(l), i * K);
  });
  return headResult(
    P,
    head.labels,
    plan.names,
    plan.split.test.map((e) => e.label),
    ms,
  );
}

const inputsOf = (v: VersionRow) =>
  v.modality === "timeseries"
    ? `${seriesPreprocessing(v.manifest as Manifest).channels}-channel series`
    : v.modality === "image"
      ? "images"
      : "text";

/**
 * TF-IDF for text; raw pixels or values (through the lead model's preprocessing) for images and
 * series. Fitted with turns of the event loop between pieces of work.
 */
export async function computeBaseline(
  lead: VersionRow,
  plan: EvaluationPlan,
): Promise<{ kind: BaselineKind; result: BaselineResult }> {
  const { inputs, options } = plan;
  const n = plan.split.train.length;
  const trainLabels = plan.split.train.map((e) => e.label);
  const testLabels = plan.split.test.map((e) => e.label);
  if (lead.modality === "text") {
    const texts = inputs.map((e) => e.input as string);
    return {
      kind: "tfidf",
      result: await runYielding(
        tfidfBaselineSteps(
          { texts: texts.slice(0, n), labels: trainLabels },
          { texts: texts.slice(n), labels: testLabels },
          options,
        ),
      ),
    };
  }
  let X: Float32Array[];
  try {
    X = rawFeatures(
      lead.manifest as Manifest,
      inputs.map((e) => e.input as ModalItem),
      "input",
    );
  } catch (e) {
    throw readdress(e, inputs);
  }
  return {
    kind: lead.modality === "image" ? "raw_pixels" : "raw_values",
    result: await runYielding(
      rawFeatureBaselineSteps(
        { X: X.slice(0, n), labels: trainLabels },
        { X: X.slice(n), labels: testLabels },
        options,
      ),
    ),
  };
}
