import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { unionAwareHook } from "../lib/union_errors";
import { requireScope } from "../middleware/auth";
import { evaluationWork } from "../services/background/evaluation_work";
import { startEvaluation } from "../services/evaluations";
import { DEFAULT_EVALUATION_KINDS } from "../services/probe/evaluate";
import { DEFAULT_SPLIT, MAX_PROBE_EXAMPLES, PROBE_KINDS } from "../services/probe/fit";
import { EvaluationSchema, evaluationView } from "./views/evaluation_views";
import { LabeledSetSchema, ProbeOptionsSchema, SplitSchema } from "./views/probe_views";

/** Model versions per evaluation: each embeds the whole set, so the work grows with it. */
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
    `At most ${MAX_EVALUATION_MODELS} models and ${MAX_PROBE_EXAMPLES} examples. ` +
    "Everything that needs no embedding is checked before the answer (refs, datasets ready and labeled, split, " +
    "options, heads; 4xx naming the field); the answer is 202 with `status: running`, and the work queue embeds " +
    `in chunks of ${evaluationWork.chunkItems} inputs (stored in R2, resumed after a crash) and fits. Poll ` +
    "GET /v1/evaluations/{id}: `progress` counts inputs embedded, then models fitted; `succeeded` brings `rows`, " +
    "`table` and `baseline`, `failed` an `error`.",
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
  responses: {
    202: jsonResponse(EvaluationSchema, "The evaluation, `running`: poll it until `succeeded` or `failed`."),
    ...errorResponses,
  },
});

export const registerV1EvaluationsCreate = (app: Router) =>
  app.openapi(
    route,
    async (c) => {
      const { db, storage, settings, work } = c.get("services");
      const ctx = { db, storage, bucket: storage.bucket, tenantId: c.get("auth").tenantId };
      const row = await startEvaluation(ctx, settings.precision, c.req.valid("json"), work, evaluationWork.chunkItems);
      return c.json(evaluationView(row), 202);
    },
    unionAwareHook,
  );
