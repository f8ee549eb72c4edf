// The whole metadata model. Timestamps are Unix milliseconds; JSON columns hold documents the API
// validates before writing. Later features add columns here, then `npm run db:generate`.
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const now = sql`(cast(unixepoch('subsec') * 1000 as integer))`;
const createdAt = () => integer("created_at").notNull().default(now);

export const MODALITIES = ["text", "image", "timeseries"] as const;
export type Modality = (typeof MODALITIES)[number];
export const SCOPES = ["admin", "embed", "train", "probe", "trainer"] as const;
export type Scope = (typeof SCOPES)[number];
export const DATASET_STATUSES = ["uploading", "validating", "ready", "invalid"] as const;
/** Probe fits over datasets and evaluations run on the work queue (api/services/background). */
export const PROBE_STATUSES = ["fitting", "ready", "failed"] as const;
export const EVALUATION_STATUSES = ["running", "succeeded", "failed"] as const;
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const PROMOTE_POLICIES = ["always", "if_better"] as const;
/** pretrain: self-supervised on a corpus; finetune: a registered encoder plus a head on a labeled set. */
export const JOB_KINDS = ["pretrain", "finetune"] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export type PromotePolicy = (typeof PROMOTE_POLICIES)[number];
/** What /complete decided about `latest` under `if_better`: both probe accuracies on the eval set. */
export type Promotion = {
  policy: PromotePolicy;
  candidate: { ref: string; linear: number | null; error?: string };
  incumbent: { ref: string; linear: number | null; error?: string } | null;
  promoted: boolean;
  evalDataset: string;
};

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    // The first characters of the secret, shown in listings so people can tell keys apart.
    prefix: text("prefix").notNull(),
    // SHA-256 (hex) of the whole secret; the secret itself is never stored.
    hash: text("hash").notNull(),
    scopes: text("scopes", { mode: "json" }).$type<Scope[]>().notNull(),
    createdBy: text("created_by"),
    createdAt: createdAt(),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
  },
  (t) => [uniqueIndex("api_keys_prefix_idx").on(t.prefix), index("api_keys_tenant_idx").on(t.tenantId)],
);

export const datasets = sqliteTable(
  "datasets",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    modality: text("modality", { enum: MODALITIES }).notNull(),
    purpose: text("purpose", { enum: ["pretrain", "probe"] }).notNull(),
    format: text("format").notNull(),
    bytes: integer("bytes").notNull(),
    sha256: text("sha256").notNull(),
    status: text("status", { enum: DATASET_STATUSES }).notNull().default("uploading"),
    objectKey: text("object_key").notNull(),
    // R2 multipart upload id while a large upload is in flight.
    uploadId: text("upload_id"),
    stats: text("stats", { mode: "json" }).$type<Record<string, unknown>>(),
    errors: text("errors", { mode: "json" }).$type<Array<Record<string, unknown>>>(),
    // The background check's resumable cursor and progress while `validating`.
    checkState: text("check_state", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull().default(now),
    completedAt: integer("completed_at"),
    // Soft delete: jobs and model versions keep pointing at the row for lineage; the bytes are gone.
    deletedAt: integer("deleted_at"),
  },
  (t) => [index("datasets_tenant_idx").on(t.tenantId, t.createdAt)],
);

export const models = sqliteTable(
  "models",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    modality: text("modality", { enum: MODALITIES }).notNull(),
    description: text("description"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("models_tenant_name_idx").on(t.tenantId, t.name)],
);

export type VersionFile = { key: string; sha256: string; bytes: number };

export const modelVersions = sqliteTable(
  "model_versions",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    modelId: text("model_id")
      .notNull()
      .references(() => models.id),
    version: integer("version").notNull(),
    modality: text("modality", { enum: MODALITIES }).notNull(),
    dims: integer("dims").notNull(),
    // Manifest as written by the trainer's exporter (modality, dims, pooling, normalize, max_tokens,
    // preprocessing, objective, dataset, config, metrics, parity results).
    manifest: text("manifest", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    files: text("files", { mode: "json" }).$type<Record<string, VersionFile>>().notNull(),
    source: text("source", { enum: ["import", "training"] }).notNull(),
    jobId: text("job_id"),
    datasetId: text("dataset_id"),
    createdBy: text("created_by"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("model_versions_model_version_idx").on(t.modelId, t.version)],
);

export const modelAliases = sqliteTable(
  "model_aliases",
  {
    modelId: text("model_id")
      .notNull()
      .references(() => models.id),
    alias: text("alias").notNull(),
    versionId: text("version_id")
      .notNull()
      .references(() => modelVersions.id),
    updatedAt: integer("updated_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.modelId, t.alias] })],
);

export const aliasEvents = sqliteTable(
  "alias_events",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    modelId: text("model_id")
      .notNull()
      .references(() => models.id),
    alias: text("alias").notNull(),
    fromVersionId: text("from_version_id"),
    toVersionId: text("to_version_id").notNull(),
    // The API key that moved it (null when the system moved it, e.g. `latest` after training).
    actorKeyId: text("actor_key_id"),
    reason: text("reason"),
    createdAt: createdAt(),
  },
  (t) => [index("alias_events_model_idx").on(t.modelId, t.alias, t.createdAt)],
);

export const trainingJobs = sqliteTable(
  "training_jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    datasetId: text("dataset_id")
      .notNull()
      .references(() => datasets.id),
    evalDatasetId: text("eval_dataset_id").references(() => datasets.id),
    modelName: text("model_name").notNull(),
    // A fine-tune job trains on a labeled (probe) dataset from the version in init_from_version_id.
    kind: text("kind", { enum: JOB_KINDS }).notNull().default("pretrain"),
    modality: text("modality", { enum: MODALITIES }).notNull(),
    objective: text("objective").notNull(),
    preset: text("preset").notNull(),
    // The job's hyperparameters only (objective, preset and modality are the columns above; migration
    // 0003 stripped the copies older rows held). The claim answer joins them for the trainer.
    config: text("config", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    status: text("status", { enum: JOB_STATUSES }).notNull().default("queued"),
    progress: text("progress", { mode: "json" }).$type<{ step: number; total: number; etaSeconds?: number }>(),
    metrics: text("metrics", { mode: "json" }).$type<Record<string, number>>(),
    error: text("error"),
    leaseOwner: text("lease_owner"),
    leaseToken: text("lease_token"),
    leaseExpiresAt: integer("lease_expires_at"),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(3),
    checkpointKey: text("checkpoint_key"),
    checkpointStep: integer("checkpoint_step"),
    // Declared by the trainer that uploaded it; the next trainer verifies the download against it.
    checkpointSha256: text("checkpoint_sha256"),
    checkpointBytes: integer("checkpoint_bytes"),
    cancelRequestedAt: integer("cancel_requested_at"),
    modelVersionId: text("model_version_id"),
    // Continued pretraining, or a fine-tune job's base: the version whose weights and tokenizer the
    // job starts from, resolved once at creation so a later alias move does not change what a
    // retried attempt loads.
    initFromVersionId: text("init_from_version_id").references(() => modelVersions.id),
    // `always` moves `latest` at /complete; `if_better` only when the new version's linear probe on
    // the eval set beats the current `latest`'s (the numbers land in `promotion`).
    promote: text("promote", { enum: PROMOTE_POLICIES }).notNull().default("always"),
    promotion: text("promotion", { mode: "json" }).$type<Promotion>(),
    createdBy: text("created_by"),
    createdAt: createdAt(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
  },
  (t) => [
    index("training_jobs_tenant_idx").on(t.tenantId, t.createdAt),
    index("training_jobs_claim_idx").on(t.status, t.leaseExpiresAt),
  ],
);

// Loss/accuracy points and lifecycle events of a job, appended by heartbeats.
export const jobEvents = sqliteTable(
  "job_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    jobId: text("job_id")
      .notNull()
      .references(() => trainingJobs.id),
    kind: text("kind").notNull(),
    step: integer("step"),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [index("job_events_job_idx").on(t.jobId, t.id)],
);

export const probes = sqliteTable(
  "probes",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    modelVersionId: text("model_version_id")
      .notNull()
      .references(() => modelVersions.id),
    kind: text("kind", { enum: ["linear", "knn", "mlp"] }).notNull(),
    trainDatasetId: text("train_dataset_id"),
    testDatasetId: text("test_dataset_id"),
    options: text("options", { mode: "json" }).$type<Record<string, unknown>>(),
    metrics: text("metrics", { mode: "json" }).$type<Record<string, unknown>>(),
    weightsKey: text("weights_key"),
    nTrain: integer("n_train"),
    nTest: integer("n_test"),
    // Fits over datasets run on the work queue: `fitting` until the consumer stores weights.
    status: text("status", { enum: PROBE_STATUSES }).notNull().default("ready"),
    // The validated request the consumer works from, its resumable cursor/progress, and why it failed.
    request: text("request", { mode: "json" }).$type<Record<string, unknown>>(),
    state: text("state", { mode: "json" }).$type<Record<string, unknown>>(),
    error: text("error", { mode: "json" }).$type<Record<string, unknown>>(),
    updatedAt: integer("updated_at"),
    createdAt: createdAt(),
  },
  (t) => [index("probes_tenant_idx").on(t.tenantId, t.modelVersionId, t.createdAt)],
);

export const evaluations = sqliteTable(
  "evaluations",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    datasetId: text("dataset_id"),
    modelRefs: text("model_refs", { mode: "json" }).$type<string[]>().notNull(),
    results: text("results", { mode: "json" }).$type<Record<string, unknown>>(),
    status: text("status", { enum: EVALUATION_STATUSES }).notNull().default("succeeded"),
    request: text("request", { mode: "json" }).$type<Record<string, unknown>>(),
    state: text("state", { mode: "json" }).$type<Record<string, unknown>>(),
    error: text("error", { mode: "json" }).$type<Record<string, unknown>>(),
    updatedAt: integer("updated_at"),
    completedAt: integer("completed_at"),
    createdAt: createdAt(),
  },
  (t) => [index("evaluations_tenant_idx").on(t.tenantId, t.createdAt)],
);

// A presigned model import between `POST /v1/models/{name}/imports` and its `/complete`: the
// validated manifest and where its files are being uploaded. `versionId` is set once registered, so a
// repeated /complete answers that version instead of registering a second one.
export const modelImports = sqliteTable(
  "model_imports",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    modelName: text("model_name").notNull(),
    manifest: text("manifest", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    // Staging prefix of the uploads; registered versions keep their files here.
    prefix: text("prefix").notNull(),
    versionId: text("version_id").references(() => modelVersions.id),
    createdBy: text("created_by"),
    createdAt: createdAt(),
    expiresAt: integer("expires_at").notNull(),
    completedAt: integer("completed_at"),
  },
  (t) => [index("model_imports_tenant_idx").on(t.tenantId, t.createdAt)],
);
