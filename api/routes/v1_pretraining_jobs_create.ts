import { createRoute, z } from "@hono/zod-openapi";
import { Hyperparameters, MODALITIES, OBJECTIVES, PRESETS } from "../contract";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { createJob } from "../services/jobs";
import { promoteField } from "./views/job_routes";
import { JobSchema, jobView } from "./views/job_views";

const objectivesText = MODALITIES.map((m) => `${m}: ${OBJECTIVES[m].join(", ")}`).join("; ");

const route = createRoute({
  method: "post",
  path: "/v1/pretraining/jobs",
  tags: ["pretraining"],
  summary: "Queue a self-supervised pretraining job on a ready dataset",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    body: jsonBody(
      z.object({
        dataset: z.string().openapi({ example: "ds_mi1x2y3zAbCdEfGhIjKl" }),
        objective: z.string().openapi({
          example: "mlm",
          description: `Must fit the dataset's modality (422 otherwise). ${objectivesText}.`,
        }),
        model: ModelName.openapi({ description: "Register the result as a new version of this model." }),
        preset: z.enum(PRESETS).default("tiny"),
        hyperparameters: Hyperparameters.default({}),
        eval: z
          .object({ dataset: z.string().openapi({ description: "A ready probe set scored at each checkpoint." }) })
          .optional(),
        max_attempts: z.number().int().min(1).max(10).default(3),
        init_from: z
          .string()
          .min(1)
          .max(100)
          .optional()
          .openapi({
            example: "minilm@1",
            description:
              "Continue pretraining a registered version (`name@N`, `name@alias` or `name`, resolved now to a fixed " +
              "version): the trainer starts from its weights, tokenizer and architecture (`preset` is then ignored). " +
              "It must have PyTorch weights (manifest `weights`: versions imported with `python -m selfsup_trainer " +
              "import` or trained here) and the dataset's modality; text objectives mlm, simcse, mlm+simcse.",
          }),
        promote: promoteField("eval.dataset"),
      }),
    ),
  },
  responses: { 201: jsonResponse(JobSchema, "The queued job."), ...errorResponses },
});

export const registerV1PretrainingJobsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const job = await createJob(c.get("services").db, c.get("auth"), c.req.valid("json"));
    return c.json(await jobView(c.get("services").db, job, true), 201);
  });
