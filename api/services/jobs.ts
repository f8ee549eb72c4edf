import { and, desc, eq } from "drizzle-orm";
import {
  type JobKind,
  type JobStatus,
  jobEvents,
  type Modality,
  models,
  type PromotePolicy,
  trainingJobs,
} from "../../db/schema";
import {
  ARCHITECTURES,
  type Hyperparameters,
  INIT_FROM_OBJECTIVES,
  MIN_HELDOUT,
  MODALITIES,
  MODALITY_FIELDS,
  OBJECTIVES,
  type PRESETS,
} from "../contract";
import type { Db } from "../db";
import { newId } from "../lib/crypto";
import { ApiError, badRequest, conflict, notFound, unprocessable } from "../lib/errors";
import { findDataset } from "./datasets";
import { resolveVersion } from "./registry";

/**
 * Lease length; a trainer heartbeats every few seconds, so a dozen missed beats lose the job.
 * `TRAINER_LEASE_SECONDS` shortens it (the end-to-end test's crash drill).
 */
export const leaseSeconds = (env: { TRAINER_LEASE_SECONDS?: string }) => {
  const n = Number(env.TRAINER_LEASE_SECONDS);
  return Number.isFinite(n) && n >= 1 ? n : 60;
};

/**
 * The checks that span fields or depend on the dataset's modality, which the trainer would
 * otherwise fail on after claiming the job. Throws a 422 naming the field and the fix.
 */
export function checkJobConfig(modality: Modality, objective: string, h: Hyperparameters) {
  const fail = (field: string, detail: string, message: string) => {
    throw unprocessable(`${field}: ${detail}`, [{ path: field, message }]);
  };
  checkModalityFields(modality, h, MODALITY_FIELDS);
  const arch = h.architecture;
  if (arch && arch !== "auto" && !ARCHITECTURES[modality].includes(arch)) {
    const valid = ["auto", ...ARCHITECTURES[modality]].join(", ");
    fail(
      "hyperparameters.architecture",
      `\`${arch}\` is not a ${modality} encoder; use one of ${valid}.`,
      `use one of ${valid}`,
    );
  }
  if (objective === "mae" && arch === "resnet") {
    fail(
      "hyperparameters.architecture",
      "resnet cannot train mae (MAE drops patches, which needs a ViT); use vit, or objective simclr.",
      "mae needs vit",
    );
  }
  const size = h.image_size ?? 32;
  const patch = h.patch_size ?? 4;
  if (modality === "image" && size % patch !== 0) {
    fail(
      "hyperparameters.patch_size",
      `${patch} does not divide image_size ${size}; pick a divisor (e.g. 4 for 32).`,
      "must divide image_size",
    );
  }
}

/** A 422 naming the first hyperparameter that `fields` reserves for other modalities. */
export function checkModalityFields(
  modality: Modality,
  h: Record<string, unknown>,
  fields: Record<string, readonly Modality[]>,
) {
  for (const [field, modalities] of Object.entries(fields)) {
    if (field in h && !modalities.includes(modality)) {
      throw unprocessable(
        `hyperparameters.${field}: applies to ${modalities.join(" and ")} jobs; this is a ${modality} job. Remove it.`,
        [{ path: `hyperparameters.${field}`, message: `not a ${modality} hyperparameter` }],
      );
    }
  }
}

/**
 * `init_from` resolved to one version of this tenant (an alias is read now, so a retried attempt
 * loads the same weights), or a 422 naming `init_from` and the fix.
 */
export async function resolveInitFrom(db: Db, tenantId: string, ref: string, modality: Modality, objective: string) {
  const fail = (detail: string, message: string): never => {
    throw unprocessable(`init_from: ${detail}`, [{ path: "init_from", message }]);
  };
  const found = await resolveVersion(db, tenantId, ref).catch((e) => {
    if (e instanceof ApiError && e.status === 404)
      return fail(e.message, "does not resolve to a version of this tenant");
    throw e;
  });
  const { model, version } = found;
  const name = `${model.name}@${version.version}`;
  if (version.modality !== modality) {
    fail(
      `${name} is ${version.modality === "image" ? "an" : "a"} ${version.modality} encoder; the dataset holds ${modality}.`,
      `must be a ${modality} encoder`,
    );
  }
  const weights = (version.manifest as { weights?: unknown }).weights;
  if (typeof weights !== "string" || !(weights in version.files)) {
    fail(
      `${name} has no PyTorch weights (manifest \`weights\`), so training cannot continue from it; import it with \`python -m selfsup_trainer import\` or train it with this platform.`,
      "has no weights file",
    );
  }
  const allowed = INIT_FROM_OBJECTIVES[modality];
  if (allowed && !allowed.includes(objective)) {
    throw unprocessable(
      `objective: \`${objective}\` cannot continue ${name}; with init_from use ${allowed.join(", ")}.`,
      [
        { path: "objective", message: `with init_from use one of ${allowed.join(", ")}` },
        { path: "init_from", message: `continues with ${allowed.join(", ")} only` },
      ],
    );
  }
  return { id: version.id, ref: name };
}

export type JobRow = typeof trainingJobs.$inferSelect;

/** Where users find jobs of each kind (the routes' paths), for messages that point there. */
export const JOBS_PATH: Record<JobKind, string> = { pretrain: "/v1/pretraining/jobs", finetune: "/v1/finetuning/jobs" };
const KIND_NAMES: Record<JobKind, string> = { pretrain: "pretraining", finetune: "fine-tuning" };

/**
 * The tenant's job `id`, or a 404. With `kind` (the user routes), a job of the other kind is a 404
 * that names the route serving it; the trainer routes pass none and take either kind.
 */
export async function findJob(db: Db, tenantId: string, id: string, kind?: JobKind): Promise<JobRow> {
  const job = await db.query.trainingJobs.findFirst({
    where: and(eq(trainingJobs.id, id), eq(trainingJobs.tenantId, tenantId)),
  });
  const name = KIND_NAMES[kind ?? "pretrain"];
  if (!job) throw notFound(`No ${name} job \`${id}\` in this tenant; GET ${JOBS_PATH[kind ?? "pretrain"]} lists them.`);
  if (kind && job.kind !== kind) {
    throw notFound(`\`${id}\` is a ${KIND_NAMES[job.kind]} job, not a ${name} one; see ${JOBS_PATH[job.kind]}/${id}.`);
  }
  return job;
}

/** The job, if `token` is its current lease; a 409 otherwise (another replica owns it, or it ended). */
export async function findLeasedJob(db: Db, tenantId: string, id: string, token: string): Promise<JobRow> {
  const job = await findJob(db, tenantId, id);
  if (job.status !== "running" || job.leaseToken !== token) {
    throw conflict(
      `The lease token is stale: job ${id} is ${job.status}${job.status === "running" ? " under another lease" : ""}. Stop working on it.`,
    );
  }
  return job;
}

// Keys are per attempt: a replica that lost its lease still holds presigned URLs for a while, and
// they must not reach the objects the current attempt writes (or a registered version reads).
type Attempt = { tenantId: string; id: string; attempts: number };
export const artifactPrefix = (job: Attempt) => `jobs/${job.tenantId}/${job.id}/attempt-${job.attempts}/artifacts`;
// One object per step: a replica killed between uploading a newer checkpoint and declaring it must
// not have overwritten the one the job record points at.
export const checkpointKey = (job: Attempt, step: number) =>
  `jobs/${job.tenantId}/${job.id}/attempt-${job.attempts}/checkpoint-${step}.tar`;

/** What POST /v1/pretraining/jobs takes, defaults applied. */
export type NewJob = {
  dataset: string;
  objective: string;
  model: string;
  preset: (typeof PRESETS)[number];
  hyperparameters: Hyperparameters;
  eval?: { dataset: string };
  max_attempts: number;
  init_from?: string;
  promote: PromotePolicy;
};

/** Nouns for the minimum-size message (MIN_HELDOUT held out, as many again to train). */
const RECORD_NOUNS: Record<Modality, string> = { text: "records", image: "images", timeseries: "series" };

/**
 * Queues a job after every check the trainer would otherwise fail on after claiming it: the dataset
 * (ready, pretrain, large enough), the objective and hyperparameters against its modality, `init_from`,
 * the eval set and the model name. The job's config holds the hyperparameters only; objective,
 * preset and modality are its columns.
 */
export async function createJob(db: Db, auth: { tenantId: string; keyId: string }, body: NewJob): Promise<JobRow> {
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
  await db.batch([
    db.insert(trainingJobs).values({
      id,
      tenantId: auth.tenantId,
      datasetId: dataset.id,
      evalDatasetId: body.eval?.dataset ?? null,
      modelName: body.model,
      kind: "pretrain",
      modality: dataset.modality,
      objective: body.objective,
      preset: body.preset,
      config: body.hyperparameters,
      maxAttempts: body.max_attempts,
      initFromVersionId: init?.id ?? null,
      promote: body.promote,
      createdBy: auth.keyId,
    }),
    db.insert(jobEvents).values({ jobId: id, kind: "queued" }),
  ]);
  return findJob(db, auth.tenantId, id);
}

/** The tenant's jobs of one kind, newest first (at most 200), optionally of one status. */
export function listJobs(db: Db, tenantId: string, status?: JobStatus, kind: JobKind = "pretrain"): Promise<JobRow[]> {
  return db
    .select()
    .from(trainingJobs)
    .where(
      and(
        eq(trainingJobs.tenantId, tenantId),
        eq(trainingJobs.kind, kind),
        status ? eq(trainingJobs.status, status) : undefined,
      ),
    )
    .orderBy(desc(trainingJobs.createdAt))
    .limit(200);
}
