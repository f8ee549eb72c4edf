// Fine-tune jobs (issue 18): a registered encoder (`base`) plus a classification head trained on a
// labeled dataset. They live in training_jobs with kind "finetune", objective "classify" and the
// base in init_from_version_id, so claims, leases, heartbeats, checkpoints and /complete are the
// pretraining ones. Every refusal here is one the trainer would otherwise hit after claiming.
import { and, eq } from "drizzle-orm";
import { type datasets, jobEvents, type Modality, models, type PromotePolicy, trainingJobs } from "../../db/schema";
import {
  FINETUNE_MODALITY_FIELDS,
  FINETUNE_OBJECTIVE,
  type FinetuneHyperparameters,
  MIN_HELDOUT,
  PRESETS,
} from "../contract";
import type { Db } from "../db";
import { newId } from "../lib/crypto";
import { ApiError, badRequest, conflict, unprocessable } from "../lib/errors";
import { findDataset } from "./datasets";
import { checkModalityFields, findJob, type JobRow } from "./jobs";
import { formatRef } from "./refs";
import { resolveVersion } from "./registry";

/** What POST /v1/finetuning/jobs takes, defaults applied. */
export type NewFinetuneJob = {
  model: string;
  base: string;
  dataset: string;
  eval_dataset?: string;
  hyperparameters: FinetuneHyperparameters;
  promote: PromotePolicy;
  max_attempts: number;
};

/** The trainer's default epochs (contract.json), stored so the job says what it will run. */
const DEFAULT_EPOCHS = 3;

const fail = (path: string, detail: string, message: string): never => {
  throw unprocessable(`${path}: ${detail}`, [{ path, message }]);
};

type Dataset = typeof datasets.$inferSelect;

const an = (modality: string) => (modality === "image" ? "an" : "a");

/** The label → count table the dataset check stored (probe sets always have one). */
const labelsOf = (d: Dataset): string[] => Object.keys((d.stats as { labels?: Record<string, number> }).labels ?? {});

/**
 * A ready labeled set of the job's modality with at least two classes, or a 422 naming `field`.
 * `ready` is checked first (a 400, as for pretraining: the upload is unfinished, not unfit).
 */
function checkLabeled(d: Dataset, field: string, modality: Modality | null) {
  if (d.status !== "ready") {
    throw badRequest(`${field}: ${d.id} is ${d.status}; complete its upload until it is ready.`, [
      { path: field, message: `is ${d.status}, must be ready` },
    ]);
  }
  if (modality && d.modality !== modality) {
    fail(
      field,
      `${d.id} holds ${d.modality}, but the base encodes ${modality}; pick ${an(modality)} ${modality} set.`,
      `must be ${an(modality)} ${modality} set`,
    );
  }
  if (d.purpose !== "probe") {
    fail(
      field,
      `${d.id} is unlabeled (purpose "${d.purpose}"); fine-tuning needs labels: upload the set with purpose "probe" (text/series JSONL with a "label", images in class folders or IDX with labels).`,
      'must be a labeled set (purpose "probe")',
    );
  }
  const labels = labelsOf(d);
  if (labels.length < 2) {
    fail(
      field,
      `${d.id} has ${labels.length} class${labels.length === 1 ? "" : "es"}; a classifier needs at least 2.`,
      "needs at least 2 classes",
    );
  }
  return labels;
}

/**
 * `base` resolved to one version of this tenant that can be trained further: PyTorch weights in its
 * files. Resolved now (an alias is read once) so a retried attempt loads the same weights.
 */
async function resolveBase(db: Db, tenantId: string, ref: string) {
  const found = await resolveVersion(db, tenantId, ref).catch((e) => {
    if (e instanceof ApiError && e.status === 404)
      return fail("base", e.message, "does not resolve to a version of this tenant");
    throw e;
  });
  const { model, version } = found;
  const name = formatRef(model.name, version.version);
  const manifest = version.manifest as { weights?: unknown; max_tokens?: unknown; preset?: unknown };
  if (typeof manifest.weights !== "string" || !(manifest.weights in version.files)) {
    fail(
      "base",
      `${name} has no PyTorch weights (manifest \`weights\`), so it cannot be fine-tuned; import it with \`python -m selfsup_trainer import\` or train it with this platform.`,
      "has no weights file",
    );
  }
  return { version, name, manifest };
}

/**
 * Queues a fine-tune job after every check the trainer would otherwise fail on: the base (resolves,
 * has weights), the labeled set and the eval set (ready, labeled, the base's modality, ≥ 2 classes,
 * eval labels known to the training set), hyperparameters that fit the modality and the base, the
 * promote policy and the model name.
 */
export async function createFinetuneJob(
  db: Db,
  auth: { tenantId: string; keyId: string },
  body: NewFinetuneJob,
): Promise<JobRow> {
  const base = await resolveBase(db, auth.tenantId, body.base);
  const modality = base.version.modality;
  const dataset = await findDataset(db, auth.tenantId, body.dataset);
  if (dataset.modality !== modality) {
    throw unprocessable(
      `base: ${base.name} is ${an(modality)} ${modality} encoder, but dataset ${dataset.id} holds ${dataset.modality}; fine-tune ${an(dataset.modality)} ${dataset.modality} encoder on it, or pick ${an(modality)} ${modality} set.`,
      [
        { path: "base", message: `must encode ${dataset.modality}, the dataset's modality` },
        { path: "dataset", message: `holds ${dataset.modality}, the base encodes ${modality}` },
      ],
    );
  }
  const labels = checkLabeled(dataset, "dataset", modality);
  const heldout = MIN_HELDOUT[modality];
  const records = (dataset.stats as { records?: unknown } | null)?.records;
  if (heldout !== null && typeof records === "number" && records < 2 * heldout) {
    fail(
      "dataset",
      `${dataset.id} has ${records} examples; fine-tuning ${an(modality)} ${modality} encoder needs at least ${2 * heldout} (some are held out for evaluation and the export parity gates). Upload a larger set.`,
      `has ${records} examples, needs at least ${2 * heldout}`,
    );
  }
  if (body.eval_dataset) {
    const evalSet = await findDataset(db, auth.tenantId, body.eval_dataset);
    const unknown = checkLabeled(evalSet, "eval_dataset", modality).filter((l) => !labels.includes(l));
    if (unknown.length > 0) {
      const shown = unknown.slice(0, 5).map((l) => JSON.stringify(l));
      fail(
        "eval_dataset",
        `${evalSet.id} has label${unknown.length === 1 ? "" : "s"} ${shown.join(", ")}${unknown.length > 5 ? ", …" : ""} that ${dataset.id} lacks; the head can only predict the training set's labels.`,
        "has labels the training set lacks",
      );
    }
  }
  const h = { ...body.hyperparameters };
  checkModalityFields(modality, h, FINETUNE_MODALITY_FIELDS);
  const baseTokens = base.manifest.max_tokens;
  if (h.max_tokens !== undefined && typeof baseTokens === "number" && h.max_tokens > baseTokens) {
    fail(
      "hyperparameters.max_tokens",
      `${h.max_tokens} is more than ${base.name} was built for (${baseTokens}); use at most ${baseTokens}.`,
      `at most the base's max_tokens ${baseTokens}`,
    );
  }
  if (h.steps === undefined && h.epochs === undefined) h.epochs = DEFAULT_EPOCHS;
  if (body.promote === "if_better" && !body.eval_dataset) {
    fail(
      "promote",
      '"if_better" compares linear-probe accuracy on the eval set; add `eval_dataset` (a labeled set) or use "always".',
      "if_better needs eval_dataset",
    );
  }
  const existing = await db.query.models.findFirst({
    where: and(eq(models.tenantId, auth.tenantId), eq(models.name, body.model)),
  });
  if (existing && existing.modality !== modality) {
    throw conflict(
      `Model \`${body.model}\` holds ${existing.modality} encoders; pick another name for a ${modality} one.`,
    );
  }
  const preset = (PRESETS as readonly unknown[]).includes(base.manifest.preset) ? (base.manifest.preset as string) : "";
  const id = newId("job");
  await db.batch([
    db.insert(trainingJobs).values({
      id,
      tenantId: auth.tenantId,
      kind: "finetune",
      datasetId: dataset.id,
      evalDatasetId: body.eval_dataset ?? null,
      modelName: body.model,
      modality,
      objective: FINETUNE_OBJECTIVE,
      // Informational only: the architecture is the base's (claim `init`), whatever preset it had.
      preset,
      config: h,
      maxAttempts: body.max_attempts,
      initFromVersionId: base.version.id,
      promote: body.promote,
      createdBy: auth.keyId,
    }),
    db.insert(jobEvents).values({ jobId: id, kind: "queued" }),
  ]);
  return findJob(db, auth.tenantId, id, "finetune");
}
