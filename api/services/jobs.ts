import { and, eq } from "drizzle-orm";
import { type Modality, trainingJobs } from "../../db/schema";
import { ARCHITECTURES, type Hyperparameters, INIT_FROM_OBJECTIVES, MODALITY_FIELDS } from "../contract";
import type { Db } from "../db";
import { ApiError, conflict, notFound, unprocessable } from "../lib/errors";
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
  for (const [field, modalities] of Object.entries(MODALITY_FIELDS)) {
    if (field in h && !modalities.includes(modality)) {
      fail(
        `hyperparameters.${field}`,
        `applies to ${modalities.join(" and ")} jobs; this is a ${modality} job. Remove it.`,
        `not a ${modality} hyperparameter`,
      );
    }
  }
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

export async function findJob(db: Db, tenantId: string, id: string): Promise<JobRow> {
  const job = await db.query.trainingJobs.findFirst({
    where: and(eq(trainingJobs.id, id), eq(trainingJobs.tenantId, tenantId)),
  });
  if (!job) throw notFound(`No pretraining job \`${id}\` in this tenant; GET /v1/pretraining/jobs lists them.`);
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
