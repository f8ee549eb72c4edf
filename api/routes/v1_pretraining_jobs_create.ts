import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { jobEvents, models, PROMOTE_POLICIES, trainingJobs } from "../../db/schema";
import { Hyperparameters, MIN_HELDOUT, MODALITIES, type Modality, OBJECTIVES, PRESETS } from "../contract";
import { newId } from "../lib/crypto";
import { badRequest, conflict, errorResponses, unprocessable } from "../lib/errors";
import { JobSchema, jobView } from "../lib/job_views";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { findDataset } from "../services/datasets";
import { checkJobConfig, resolveInitFrom } from "../services/jobs";

/** Nouns for the minimum-size message (MIN_HELDOUT held out, as many again to train). */
const RECORD_NOUNS: Record<Modality, string> = { text: "records", image: "images", timeseries: "series" };

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
        promote: z
          .enum(PROMOTE_POLICIES)
          .default("always")
          .openapi({
            description:
              "`always`: the new version becomes `latest`. `if_better`: only if its linear-probe accuracy on " +
              "`eval.dataset` beats the current `latest`'s (both numbers in the job's `promotion`); needs `eval`.",
          }),
      }),
    ),
  },
  responses: { 201: jsonResponse(JobSchema, "The queued job."), ...errorResponses },
});

export const registerV1PretrainingJobsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const { db } = c.get("services");
    const auth = c.get("auth");
    const dataset = await findDataset(db, auth.tenantId, body.dataset);
    if (dataset.status !== "ready") {
      throw badRequest(`dataset: ${dataset.id} is ${dataset.status}; complete its upload until it is ready.`, [
        { path: "dataset", message: `is ${dataset.status}, must be ready` },
      ]);
    }
    if (dataset.purpose !== "pretrain") {
      throw badRequest(`dataset: ${dataset.id} is a probe set; pretrain on a dataset with purpose "pretrain".`, [
        { path: "dataset", message: "purpose must be pretrain" },
      ]);
    }
    const heldout = MIN_HELDOUT[dataset.modality];
    const minimum = heldout === null ? 0 : 2 * heldout;
    const records = (dataset.stats as { records?: unknown } | null)?.records;
    if (typeof records === "number" && records < minimum) {
      const noun = RECORD_NOUNS[dataset.modality];
      throw unprocessable(
        `dataset: ${dataset.id} has ${records} ${noun}; pretraining needs at least ${minimum} (some are held out for evaluation and the export parity gates). Upload a larger set.`,
        [{ path: "dataset", message: `has ${records} ${noun}, needs at least ${minimum}` }],
      );
    }
    const valid = OBJECTIVES[dataset.modality];
    if (!valid.includes(body.objective)) {
      const owner = MODALITIES.find((m) => OBJECTIVES[m].includes(body.objective));
      const message = `use one of ${valid.join(", ")}`;
      // A real objective of another modality is a mismatch (422); an unknown name is a bad value (400).
      if (owner) {
        throw unprocessable(
          `objective: \`${body.objective}\` is ${owner === "image" ? "an" : "a"} ${owner} objective, but dataset ${dataset.id} holds ${dataset.modality}; ${message}.`,
          [{ path: "objective", message }],
        );
      }
      throw badRequest(`objective: \`${body.objective}\` does not fit ${dataset.modality} data; ${message}.`, [
        { path: "objective", message },
      ]);
    }
    checkJobConfig(dataset.modality, body.objective, body.hyperparameters);
    const init = body.init_from
      ? await resolveInitFrom(db, auth.tenantId, body.init_from, dataset.modality, body.objective)
      : null;
    if (body.promote === "if_better" && !body.eval) {
      throw unprocessable(
        'promote: "if_better" compares linear-probe accuracy on the job\'s eval set; add `eval: {"dataset": "ds_…"}` (a ready probe set) or use "always".',
        [{ path: "promote", message: "if_better needs eval.dataset" }],
      );
    }
    if (body.hyperparameters.steps === undefined && body.hyperparameters.epochs === undefined) {
      body.hyperparameters.epochs = 1;
    }
    if (body.eval) {
      const probe = await findDataset(db, auth.tenantId, body.eval.dataset);
      if (probe.modality !== dataset.modality) {
        throw unprocessable(
          `eval.dataset: ${probe.id} holds ${probe.modality}, but the job trains on ${dataset.modality}; pick a ${dataset.modality} probe set.`,
          [{ path: "eval.dataset", message: `must be a ${dataset.modality} probe set` }],
        );
      }
      if (probe.status !== "ready" || probe.purpose !== "probe") {
        throw badRequest(`eval.dataset: ${probe.id} must be a ready ${dataset.modality} probe set.`, [
          { path: "eval.dataset", message: "must be a ready probe set of the same modality" },
        ]);
      }
    }
    const existing = await db.query.models.findFirst({
      where: and(eq(models.tenantId, auth.tenantId), eq(models.name, body.model)),
    });
    if (existing && existing.modality !== dataset.modality) {
      throw conflict(
        `Model \`${body.model}\` holds ${existing.modality} encoders; pick another name for a ${dataset.modality} one.`,
      );
    }
    const id = newId("job");
    const config = {
      objective: body.objective,
      preset: body.preset,
      modality: dataset.modality,
      ...body.hyperparameters,
    };
    await db.batch([
      db.insert(trainingJobs).values({
        id,
        tenantId: auth.tenantId,
        datasetId: dataset.id,
        evalDatasetId: body.eval?.dataset ?? null,
        modelName: body.model,
        modality: dataset.modality,
        objective: body.objective,
        preset: body.preset,
        config,
        maxAttempts: body.max_attempts,
        initFromVersionId: init?.id ?? null,
        promote: body.promote,
        createdBy: auth.keyId,
      }),
      db.insert(jobEvents).values({ jobId: id, kind: "queued" }),
    ]);
    const job = await db.query.trainingJobs.findFirst({ where: eq(trainingJobs.id, id) });
    if (!job) throw new Error(`job ${id} vanished`);
    return c.json(await jobView(db, job, true), 201);
  });
