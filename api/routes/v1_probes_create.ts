import { createRoute, z } from "@hono/zod-openapi";
import { newId } from "../lib/crypto";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { unionAwareHook } from "../lib/union_errors";
import { requireScope } from "../middleware/auth";
import { choosePrecision } from "../services/encoder/sessions";
import type { Manifest } from "../services/manifest";
import { embedWithCache } from "../services/probe/embeddings";
import {
  checkExamples,
  DEFAULT_SPLIT,
  fitProbe,
  MAX_PROBE_EXAMPLES,
  PROBE_KINDS,
  planSplit,
  toMatrix,
} from "../services/probe/fit";
import { MLP_DEFAULTS } from "../services/probe/mlp";
import { insertProbe, loadExamples, probeInputKey, runtimeEmbed, storeWeights, weightsKey } from "../services/probes";
import { formatRef } from "../services/refs";
import { resolveVersion } from "../services/registry";
import {
  LabeledSetSchema,
  ProbeOptionsSchema,
  ProbeSchema,
  probeView,
  SplitSchema,
  type StoredProbe,
} from "./views/probe_views";

export const ProbeRequest = z
  .object({
    model: z.string().min(1).openapi({ example: "demo@latest", description: "`name`, `name@3` or `name@alias`." }),
    kind: z.enum(PROBE_KINDS).openapi({ example: "linear" }),
    train: LabeledSetSchema,
    test: z
      .union([LabeledSetSchema, SplitSchema], {
        error: 'send test examples, {"dataset": id} or {"split": 0.2, "seed": 0}',
      })
      .optional()
      .openapi({ description: `Default: {"split": ${DEFAULT_SPLIT}, "seed": 0}.` }),
    options: ProbeOptionsSchema.optional(),
  })
  .openapi("ProbeRequest");

const route = createRoute({
  method: "post",
  path: "/v1/probes",
  tags: ["probes"],
  summary: "Fit a linear, kNN or MLP probe on a model version's frozen embeddings",
  description:
    "Inputs follow the model's modality: text, base64 images, or number-array series, inline or as a probe dataset of " +
    "that modality (decision 0005). " +
    "Embeds train and test through the same runtime as /v1/embeddings (cached per model version and input SHA-256), " +
    "then fits: `linear` is multinomial logistic regression on standardized embeddings, L2 strength chosen by " +
    "stratified k-fold CV over `c_grid`, solved by L-BFGS to max |gradient| <= tol; `knn` votes among the k most " +
    "cosine-similar train embeddings with weight exp(sim / T); `mlp` is one hidden ReLU layer on standardized " +
    `embeddings (default ${MLP_DEFAULTS.hidden} units), AdamW on mini-batches, the epoch with the lowest loss on a ` +
    `stratified validation split of train (default ${MLP_DEFAULTS.validation_split}) kept, at most ` +
    `${MLP_DEFAULTS.max_epochs} epochs by default (its hyperparameters record the chosen epoch, epochs run and ` +
    "validation loss). Deterministic for a given seed. " +
    `At most ${MAX_PROBE_EXAMPLES} train + test examples per call (413 beyond).`,
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: { body: jsonBody(ProbeRequest) },
  responses: {
    201: jsonResponse(ProbeSchema, "The probe with its test metrics; weights stored for /predict."),
    ...errorResponses,
  },
});

export const registerV1ProbesCreate = (app: Router) =>
  app.openapi(
    route,
    async (c) => {
      const { db, storage } = c.get("services");
      const auth = c.get("auth");
      const body = c.req.valid("json");
      const { model, version } = await resolveVersion(db, auth.tenantId, body.model);
      const ref = formatRef(model.name, version.version);
      const ctx = { db, storage, bucket: storage.bucket, tenantId: auth.tenantId };
      const train = await loadExamples(ctx, version, ref, body.train, "train");
      const testSpec = body.test ?? { split: DEFAULT_SPLIT, seed: 0 };
      const isSplit = !Array.isArray(testSpec) && "split" in testSpec;
      const test = isSplit
        ? null
        : await loadExamples(ctx, version, ref, testSpec as Exclude<typeof testSpec, { split: number }>, "test");
      const split = planSplit(train.examples, test ? test.examples : (testSpec as { split: number; seed: number }));
      const options = body.options ?? {};
      checkExamples(body.kind, split.train, split.test, options);

      const precision = choosePrecision(version.manifest as Manifest, c.var.services.settings.precision);
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
      const key = weightsKey(auth.tenantId, id);
      await storeWeights(storage, key, fit.weights);
      const stored: StoredProbe = {
        request: { test: isSplit ? testSpec : undefined, options, precision },
        labels: fit.labels,
        hyperparameters: fit.hyperparameters,
        timings: { embed_ms: stats.embed_ms, fit_ms: fit.fit_ms },
        embeddings: { cached: stats.cached, embedded: stats.embedded },
      };
      const row = await insertProbe(db, {
        id,
        tenantId: auth.tenantId,
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
      return c.json(probeView({ probe: row, modelName: model.name, version: version.version }), 201);
    },
    unionAwareHook,
  );
