import { createRoute, z } from "@hono/zod-openapi";
import { FinetuneHyperparameters } from "../contract";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { createFinetuneJob } from "../services/job_finetune";
import { promoteField } from "./views/job_routes";
import { JobSchema, jobView } from "./views/job_views";

const route = createRoute({
  method: "post",
  path: "/v1/finetuning/jobs",
  tags: ["finetuning"],
  summary: "Queue a fine-tune job: a registered encoder plus a classification head on a labeled dataset",
  description:
    "The trainer claims it like a pretraining job (same leases, heartbeats, checkpoints, resume), trains the " +
    "base's encoder and a head, exports ONNX with both the embedding and the `logits` output, and registers a " +
    "new version of `model` whose manifest carries `head` (labels) and `finetuned_from`; it serves " +
    "`/v1/classifications` and `/v1/embeddings`. Refusals are 422s naming the field: a base without PyTorch " +
    "weights or of another modality than the dataset, an unlabeled dataset, fewer than 2 classes.",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    body: jsonBody(
      z.object({
        model: ModelName.openapi({
          description: "Register the result as a new version of this model (may be the base's own name).",
        }),
        base: z
          .string()
          .min(1)
          .max(100)
          .openapi({
            example: "demo@1",
            description:
              "The version to fine-tune: `name`, `name@N` or `name@alias`, resolved now to a fixed version. It needs " +
              "PyTorch weights (manifest `weights`: versions trained here or imported with `python -m selfsup_trainer import`).",
          }),
        dataset: z.string().openapi({
          example: "ds_mi1x2y3zAbCdEfGhIjKl",
          description:
            'A ready labeled set (purpose "probe") of the base\'s modality with at least 2 classes: text or series ' +
            "JSONL with `label`, images in class folders or IDX with labels.",
        }),
        eval_dataset: z
          .string()
          .optional()
          .openapi({
            description:
              "A ready labeled set for early stopping and the reported metrics; without it `validation_split` of the " +
              "dataset is held out. Its labels must all occur in `dataset`.",
          }),
        hyperparameters: FinetuneHyperparameters.default({}),
        promote: promoteField("eval_dataset"),
        max_attempts: z.number().int().min(1).max(10).default(3),
      }),
    ),
  },
  responses: { 201: jsonResponse(JobSchema, "The queued job (`kind: finetune`)."), ...errorResponses },
});

export const registerV1FinetuningJobsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const job = await createFinetuneJob(c.get("services").db, c.get("auth"), c.req.valid("json"));
    return c.json(await jobView(c.get("services").db, job, true), 201);
  });
