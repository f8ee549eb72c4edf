import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { unionAwareHook } from "../lib/union_errors";
import { requireScope } from "../middleware/auth";
import { probeFitWork } from "../services/background/probe_fit_work";
import { DEFAULT_SPLIT, MAX_PROBE_EXAMPLES, PROBE_KINDS } from "../services/probe/fit";
import { MLP_DEFAULTS } from "../services/probe/mlp";
import { createProbe, readsDataset } from "../services/probe_runs";
import { LabeledSetSchema, ProbeOptionsSchema, ProbeSchema, probeView, SplitSchema } from "./views/probe_views";

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
    `At most ${MAX_PROBE_EXAMPLES} train + test examples per call (413 beyond). ` +
    "Inline examples (bounded by the request size) are fitted inside the request: 201 with `status: ready`. A probe " +
    "that reads a dataset (`train` or `test`) is checked first (datasets ready and labeled, split, options; 4xx " +
    "naming the field), then answered 202 with `status: fitting`: the work queue embeds in chunks of " +
    `${probeFitWork.chunkItems} inputs (stored in R2, resumed after a crash) and fits. Poll GET /v1/probes/{id} ` +
    "(`progress`) until `ready` (metrics, weights) or `failed` (`error`); /predict answers 409 before then.",
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: { body: jsonBody(ProbeRequest) },
  responses: {
    201: jsonResponse(ProbeSchema, "Inline examples: the probe with its test metrics; weights stored for /predict."),
    202: jsonResponse(ProbeSchema, "A probe over a dataset, `fitting`: poll it until `ready` or `failed`."),
    ...errorResponses,
  },
});

export const registerV1ProbesCreate = (app: Router) =>
  app.openapi(
    route,
    async (c) => {
      const { db, storage, settings, work } = c.get("services");
      const ctx = { db, storage, bucket: storage.bucket, tenantId: c.get("auth").tenantId };
      const body = c.req.valid("json");
      const created = await createProbe(ctx, settings.precision, body, work, probeFitWork.chunkItems);
      return readsDataset(body) ? c.json(probeView(created), 202) : c.json(probeView(created), 201);
    },
    unionAwareHook,
  );
