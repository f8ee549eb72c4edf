import { createRoute, z } from "@hono/zod-openapi";
import { evaluations } from "../../db/schema";
import { newId } from "../lib/crypto";
import { badRequest, errorResponses, unprocessable } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { unionAwareHook } from "../lib/union_errors";
import { requireScope } from "../middleware/auth";
import { softmax } from "../services/encoder/classify";
import type { ModalItem } from "../services/encoder/items";
import { choosePrecision } from "../services/encoder/sessions";
import { type Manifest, seriesPreprocessing } from "../services/manifest";
import { type BaselineResult, rawFeatureBaseline, tfidfBaseline } from "../services/probe/baseline";
import { embedWithCache } from "../services/probe/embeddings";
import {
  baselineResults,
  DEFAULT_EVALUATION_KINDS,
  deltaVsBaseline,
  fitKinds,
  headResult,
  type KindResult,
  type ResultRow,
  resultRows,
} from "../services/probe/evaluate";
import {
  checkExamples,
  DEFAULT_SPLIT,
  type Example,
  encodeLabels,
  MAX_PROBE_EXAMPLES,
  PROBE_KINDS,
  type ProbeOptions,
  planSplit,
  toMatrix,
} from "../services/probe/fit";
import { rawFeatures } from "../services/probe/raw_features";
import { loadExamples, probeInputKey, readdress, runtimeEmbed } from "../services/probes";
import { formatRef } from "../services/refs";
import { resolveVersion, type VersionRow } from "../services/registry";
import { type BaselineKind, type EvaluationResults, EvaluationSchema, evaluationView } from "./views/evaluation_views";
import { LabeledSetSchema, ProbeOptionsSchema, SplitSchema } from "./views/probe_views";

/** Model versions per evaluation: each embeds the whole set, so the synchronous work grows with it. */
export const MAX_EVALUATION_MODELS = 4;

const route = createRoute({
  method: "post",
  path: "/v1/evaluations",
  tags: ["probes"],
  summary:
    "Compare model versions on one labeled set: linear, kNN and MLP probes side by side, plus a raw-feature baseline",
  description:
    "Splits the set once (stratified, seeded), then for each version fits the probes of `kinds` (default linear and " +
    "kNN) on its cached embeddings; a fine-tuned version (one whose manifest has a classification `head` covering " +
    "the set's labels) is also scored by its head on the test inputs (kind `finetuned`). A linear and a kNN probe " +
    "on raw features of the same split show whether pretraining beat raw features: TF-IDF for text, pooled pixels " +
    "for images, resampled values for series (`baseline.kind`). Every model must take the same modality as the data. " +
    `At most ${MAX_EVALUATION_MODELS} models and ${MAX_PROBE_EXAMPLES} examples.`,
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: {
    body: jsonBody(
      z.object({
        models: z
          .array(z.string().min(1))
          .min(1, "name at least one model version")
          .max(MAX_EVALUATION_MODELS, `at most ${MAX_EVALUATION_MODELS} models per evaluation`)
          .openapi({ example: ["demo@2", "demo@3"] }),
        data: LabeledSetSchema,
        test: z
          .union([LabeledSetSchema, SplitSchema])
          .optional()
          .openapi({ description: `Default: {"split": ${DEFAULT_SPLIT}, "seed": 0}.` }),
        kinds: z
          .array(z.enum(PROBE_KINDS))
          .min(1, "name at least one probe kind")
          .refine((k) => new Set(k).size === k.length, "list each kind once")
          .optional()
          .openapi({
            example: ["linear", "knn", "mlp"],
            description: `Probe kinds fitted on each model's embeddings (default ${JSON.stringify(DEFAULT_EVALUATION_KINDS)}).`,
          }),
        options: ProbeOptionsSchema.optional(),
      }),
    ),
  },
  responses: { 201: jsonResponse(EvaluationSchema, "The stored evaluation and its table."), ...errorResponses },
});

export const registerV1EvaluationsCreate = (app: Router) =>
  app.openapi(
    route,
    async (c) => {
      const { db, storage } = c.get("services");
      const auth = c.get("auth");
      const body = c.req.valid("json");
      const versions: { name: string; version: VersionRow }[] = [];
      for (const [i, ref] of body.models.entries()) {
        const { model, version } = await resolveVersion(db, auth.tenantId, ref);
        const name = formatRef(model.name, version.version);
        const first = versions[0]?.version;
        if (first && !sameInputs(first, version)) {
          throw unprocessable(
            `models[${i}]: ${name} takes ${inputsOf(version)}, but ${versions[0]?.name} takes ${inputsOf(first)}; compare models of one input kind.`,
            [{ path: `models[${i}]`, message: `must take ${inputsOf(first)} like models[0]` }],
          );
        }
        if (versions.some((v) => v.version.id === version.id)) {
          throw badRequest(`models[${i}]: ${ref} is ${name} again; list each version once.`, [
            { path: `models[${i}]`, message: "duplicate version" },
          ]);
        }
        versions.push({ name, version });
      }
      const lead = versions[0] as { name: string; version: VersionRow };
      const ctx = { db, storage, bucket: storage.bucket, tenantId: auth.tenantId };
      const data = await loadExamples(ctx, lead.version, lead.name, body.data, "data");
      const testSpec = body.test ?? { split: DEFAULT_SPLIT, seed: 0 };
      const isSplit = !Array.isArray(testSpec) && "split" in testSpec;
      const test = isSplit
        ? null
        : await loadExamples(
            ctx,
            lead.version,
            lead.name,
            testSpec as Exclude<typeof testSpec, { split: number }>,
            "test",
          );
      const split = planSplit(data.examples, test ? test.examples : (testSpec as { split: number; seed: number }));
      const options = body.options ?? {};
      checkExamples("linear", split.train, split.test, options);

      const kinds = body.kinds ?? DEFAULT_EVALUATION_KINDS;
      const trainLabels = split.train.map((e) => e.label);
      const testLabels = split.test.map((e) => e.label);
      const inputs = [...split.train, ...split.test];
      const n = split.train.length;
      const names = encodeLabels(trainLabels).names;
      // A fine-tuned head must know every label of the set before any input is embedded.
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
      const { kind, result: baseline } = computeBaseline(lead.version, inputs, n, trainLabels, testLabels, options);
      const rows: ResultRow[] = [];
      const table: EvaluationResults["table"] = [];
      let labels: string[] = [];
      for (const { name, version } of versions) {
        const precision = choosePrecision(version.manifest as Manifest, c.var.services.settings.precision);
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
        if (head) {
          // A fine-tuned version is also scored by its own head on the test inputs.
          const started = Date.now();
          const { vectors: logits } = await embedWithCache(
            storage,
            `${version.id}/${precision}/logits`,
            split.test,
            probeInputKey,
            runtimeEmbed(storage, version, precision, "logits"),
          );
          const K = head.labels.length;
          const P = new Float64Array(logits.length * K);
          logits.forEach((l, i) => {
            P.set(softmax(l), i * K);
          });
          results.push(headResult(P, head.labels, names, testLabels, Date.now() - started));
        }
        labels = (results[0] as KindResult).metrics.confusion.labels;
        rows.push(...resultRows(name, "embeddings", results, baseline));
        table.push(tableRow(name, "embeddings", results, baseline, stats.embed_ms));
      }
      const base = baselineResults(baseline);
      rows.push(...resultRows(kind, kind, base, null));
      table.push(tableRow(kind, kind, base, null, 0));
      const results: EvaluationResults = {
        labels,
        n_train: n,
        n_test: split.test.length,
        split: isSplit ? (testSpec as Record<string, unknown>) : null,
        kinds: [...kinds],
        rows: rows as EvaluationResults["rows"],
        table,
        baseline: { kind, features: baseline.features },
      };
      const [row] = await db
        .insert(evaluations)
        .values({
          id: newId("evl"),
          tenantId: auth.tenantId,
          datasetId: data.datasetId,
          modelRefs: versions.map((v) => v.name),
          results: results as unknown as Record<string, unknown>,
        })
        .returning();
      if (!row) throw new Error("insert returned no row");
      return c.json(evaluationView(row), 201);
    },
    unionAwareHook,
  );

/** One model's results as a summary-table row (the baseline's: `baseline` null, `fit_ms` its own). */
function tableRow(
  name: string,
  features: EvaluationResults["table"][number]["features"],
  results: KindResult[],
  baseline: BaselineResult | null,
  embed_ms: number,
): EvaluationResults["table"][number] {
  const row: EvaluationResults["table"][number] = {
    name,
    features,
    delta_vs_baseline: baseline ? {} : null,
    timings: { embed_ms, fit_ms: results.reduce((t, r) => t + r.fit_ms, 0) },
  };
  for (const r of results) {
    const cell = { accuracy: r.metrics.accuracy, macro_f1: r.metrics.macro_f1 };
    if (r.kind === "linear") row.linear = { ...cell, C: r.hyperparameters.C as number };
    else if (r.kind === "knn") row.knn = { ...cell, k: r.hyperparameters.k as number };
    else if (r.kind === "mlp") row.mlp = { ...cell, best_epoch: r.hyperparameters.best_epoch as number };
    else row.finetuned = cell;
    if (baseline && row.delta_vs_baseline) row.delta_vs_baseline[r.kind] = deltaVsBaseline(r, baseline);
  }
  return row;
}

const inputsOf = (v: VersionRow) =>
  v.modality === "timeseries"
    ? `${seriesPreprocessing(v.manifest as Manifest).channels}-channel series`
    : v.modality === "image"
      ? "images"
      : "text";

/** Models compared on one set must read the same inputs: one modality, and for series one channel count. */
const sameInputs = (a: VersionRow, b: VersionRow) => inputsOf(a) === inputsOf(b);

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
