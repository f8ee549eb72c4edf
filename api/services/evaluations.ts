// POST /v1/evaluations' work: several model versions (and fine-tuned heads) scored on one labeled
// set, split once, next to a raw-feature baseline, stored as one row. Knows nothing of Hono.
import { evaluations } from "../../db/schema";
import type { Db } from "../db";
import { newId } from "../lib/crypto";
import { badRequest, unprocessable } from "../lib/errors";
import { softmax } from "./encoder/classify";
import type { ModalItem } from "./encoder/items";
import { choosePrecision, type Precision } from "./encoder/sessions";
import { type Head, type Manifest, seriesPreprocessing } from "./manifest";
import { type BaselineKind, type BaselineResult, rawFeatureBaseline, tfidfBaseline } from "./probe/baseline";
import { embedWithCache } from "./probe/embeddings";
import {
  baselineResults,
  DEFAULT_EVALUATION_KINDS,
  type EvaluationResults,
  fitKinds,
  headResult,
  type KindResult,
  type ResultRow,
  resultRows,
  type TableRow,
  tableRow,
} from "./probe/evaluate";
import {
  checkExamples,
  DEFAULT_SPLIT,
  type Example,
  encodeLabels,
  type ProbeKind,
  type ProbeOptions,
  planSplit,
  toMatrix,
} from "./probe/fit";
import { rawFeatures } from "./probe/raw_features";
import { type LabeledSource, loadExamples, type ProbeContext, probeInputKey, readdress, runtimeEmbed } from "./probes";
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

/**
 * Runs and stores an evaluation.
 *
 * @param preferred the deployment's precision setting (each version's choice follows it).
 * @returns the stored row.
 * @throws ApiError 400/404/413/422 naming the request field (models[i], data, test, options.*).
 */
export async function runEvaluation(
  ctx: ProbeContext,
  preferred: Precision | "auto",
  body: EvaluationRequest,
): Promise<typeof evaluations.$inferSelect> {
  const { db, storage } = ctx;
  const versions = await resolveModels(db, ctx.tenantId, body.models);
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

  const kinds = body.kinds ?? DEFAULT_EVALUATION_KINDS;
  const trainLabels = split.train.map((e) => e.label);
  const testLabels = split.test.map((e) => e.label);
  const inputs = [...split.train, ...split.test];
  const n = split.train.length;
  const names = encodeLabels(trainLabels).names;
  checkHeads(versions, names);
  const { kind, result: baseline } = computeBaseline(lead.version, inputs, n, trainLabels, testLabels, options);
  const rows: ResultRow[] = [];
  const table: TableRow[] = [];
  for (const { name, version } of versions) {
    const precision = choosePrecision(version.manifest as Manifest, preferred);
    const { vectors, stats } = await embedWithCache(
      storage,
      `${version.id}/${precision}`,
      inputs,
      probeInputKey,
      runtimeEmbed(storage, version, precision),
    );
    const trainSet = { X: toMatrix(vectors.slice(0, n)), labels: trainLabels };
    const testSet = { X: toMatrix(vectors.slice(n)), labels: testLabels };
    const results = fitKinds(kinds, trainSet, testSet, options);
    const head = (version.manifest as Manifest).head;
    if (head) results.push(await scoreHead(ctx, version, precision, head, split.test, names));
    rows.push(...resultRows(name, "embeddings", results, baseline));
    table.push(tableRow(name, "embeddings", results, baseline, stats.embed_ms));
  }
  const base = baselineResults(baseline);
  rows.push(...resultRows(kind, kind, base, null));
  table.push(tableRow(kind, kind, base, null, 0));
  const results: EvaluationResults = {
    labels: names,
    n_train: n,
    n_test: split.test.length,
    split: isSplit ? (testSpec as Record<string, unknown>) : null,
    kinds: [...kinds],
    rows,
    table,
    baseline: { kind, features: baseline.features },
  };
  const [row] = await db
    .insert(evaluations)
    .values({
      id: newId("evl"),
      tenantId: ctx.tenantId,
      datasetId: data.datasetId,
      modelRefs: versions.map((v) => v.name),
      results: results as unknown as Record<string, unknown>,
    })
    .returning();
  if (!row) throw new Error("insert returned no row");
  return row;
}

/** The listed versions, each once, all reading one input kind; errors name `models[i]`. */
async function resolveModels(db: Db, tenantId: string, refs: string[]): Promise<Entry[]> {
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

/** A fine-tuned version scored by its own head on the test inputs (logits cached apart from embeddings). */
async function scoreHead(
  ctx: ProbeContext,
  version: VersionRow,
  precision: Precision,
  head: Head,
  test: Example[],
  names: string[],
): Promise<KindResult> {
  const started = Date.now();
  const { vectors: logits } = await embedWithCache(
    ctx.storage,
    `${version.id}/${precision}/logits`,
    test,
    probeInputKey,
    runtimeEmbed(ctx.storage, version, precision, "logits"),
  );
  const K = head.labels.length;
  const P = new Float64Array(logits.length * K);
  logits.forEach((l, i) => {
    P.set(softmax(l), i * K);
  });
  return headResult(
    P,
    head.labels,
    names,
    test.map((e) => e.label),
    Date.now() - started,
  );
}

const inputsOf = (v: VersionRow) =>
  v.modality === "timeseries"
    ? `${seriesPreprocessing(v.manifest as Manifest).channels}-channel series`
    : v.modality === "image"
      ? "images"
      : "text";

/** TF-IDF for text; raw pixels or values (through the lead model's preprocessing) for images and series. */
function computeBaseline(
  lead: VersionRow,
  inputs: Example[],
  n: number,
  trainLabels: string[],
  testLabels: string[],
  options: ProbeOptions,
): { kind: BaselineKind; result: BaselineResult } {
  if (lead.modality === "text") {
    const texts = inputs.map((e) => e.input as string);
    return {
      kind: "tfidf",
      result: tfidfBaseline(
        { texts: texts.slice(0, n), labels: trainLabels },
        { texts: texts.slice(n), labels: testLabels },
        options,
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
    result: rawFeatureBaseline(
      { X: X.slice(0, n), labels: trainLabels },
      { X: X.slice(n), labels: testLabels },
      options,
    ),
  };
}
