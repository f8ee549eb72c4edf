import { and, asc, desc, eq, type SQL, sql } from "drizzle-orm";
import { aliasEvents, type Modality, modelAliases, models, modelVersions, type VersionFile } from "../../db/schema";
import type { Db } from "../db";
import { newId } from "../lib/crypto";
import { conflict, notFound } from "../lib/errors";
import { TtlCache } from "./cache";
import { parseModelRef } from "./refs";

export type ModelRow = typeof models.$inferSelect;
export type VersionRow = typeof modelVersions.$inferSelect;

export async function findModel(db: Db, tenantId: string, name: string): Promise<ModelRow> {
  const model = await db.query.models.findFirst({ where: and(eq(models.tenantId, tenantId), eq(models.name, name)) });
  if (!model) throw notFound(`No model named \`${name}\` in this tenant; GET /v1/models lists them.`);
  return model;
}

/** Versions never change once registered: `name@3` is cached this long (bounded by memory, not staleness). */
export const VERSION_TTL_MS = 10 * 60_000;
/** An alias may move in another isolate: `name` and `name@alias` are served at most this stale. */
export const ALIAS_TTL_MS = 5_000;

type Resolved = { model: ModelRow; version: VersionRow };
const refCache = new TtlCache<string, Resolved>(ALIAS_TTL_MS, 5_000);
const cacheKey = (tenantId: string, ref: string) => `${tenantId}\n${ref}`;

/**
 * Forgets this tenant's cached alias lookups (every `name`/`name@alias`), so a request in this
 * isolate sees an alias move at once; other isolates see it within ALIAS_TTL_MS.
 */
export function forgetAliases(tenantId: string) {
  refCache.deleteWhere((k) => k.startsWith(`${tenantId}\n`) && !/@[0-9]+$/.test(k));
}

/**
 * Resolves `name`, `name@3` or `name@alias` to one version of this tenant, or a 404 naming the ref,
 * in one query (model left-joined to the alias and the version, so the 404 can say which is missing).
 *
 * @param opts.cached serve from this isolate's cache (versions by number for VERSION_TTL_MS,
 *   aliases for ALIAS_TTL_MS): the embeddings hot path. Callers that decide something from an
 *   alias (promotion, alias moves) read D1.
 */
export async function resolveVersion(db: Db, tenantId: string, ref: string, opts: { cached?: boolean } = {}) {
  const parsed = parseModelRef(ref);
  if (!parsed) throw notFound(`\`${ref}\` is not a model reference; use \`name\`, \`name@3\` or \`name@alias\`.`);
  const selector = "version" in parsed.selector ? `@${parsed.selector.version}` : `@${parsed.selector.alias}`;
  const key = cacheKey(tenantId, `${parsed.name}${selector}`);
  if (opts.cached) {
    const hit = refCache.get(key);
    if (hit) return hit;
  }
  const where = and(eq(models.tenantId, tenantId), eq(models.name, parsed.name));
  const cols = { model: models, version: modelVersions };
  const [row] =
    "version" in parsed.selector
      ? await db
          .select(cols)
          .from(models)
          .leftJoin(
            modelVersions,
            and(eq(modelVersions.modelId, models.id), eq(modelVersions.version, parsed.selector.version)),
          )
          .where(where)
          .limit(1)
      : await db
          .select(cols)
          .from(models)
          .leftJoin(
            modelAliases,
            and(eq(modelAliases.modelId, models.id), eq(modelAliases.alias, parsed.selector.alias)),
          )
          .leftJoin(modelVersions, eq(modelVersions.id, modelAliases.versionId))
          .where(where)
          .limit(1);
  if (!row) throw notFound(`No model named \`${parsed.name}\` in this tenant; GET /v1/models lists them.`);
  if (!row.version)
    throw notFound(`Model \`${parsed.name}\` has no version \`${ref}\`; GET /v1/models/${parsed.name} lists them.`);
  const found: Resolved = { model: row.model, version: row.version };
  if (opts.cached) refCache.set(key, found, "version" in parsed.selector ? VERSION_TTL_MS : ALIAS_TTL_MS);
  return found;
}

export async function aliasesOf(db: Db, modelId: string) {
  const rows = await db
    .select({ alias: modelAliases.alias, version: modelVersions.version, updatedAt: modelAliases.updatedAt })
    .from(modelAliases)
    .innerJoin(modelVersions, eq(modelVersions.id, modelAliases.versionId))
    .where(eq(modelAliases.modelId, modelId))
    .orderBy(asc(modelAliases.alias));
  return rows;
}

export async function versionsOf(db: Db, modelId: string) {
  return db.query.modelVersions.findMany({
    where: eq(modelVersions.modelId, modelId),
    orderBy: desc(modelVersions.version),
  });
}

export type RegisterInput = {
  tenantId: string;
  modelName: string;
  modality: Modality;
  versionId: string;
  dims: number;
  manifest: Record<string, unknown>;
  files: Record<string, VersionFile>;
  source: "import" | "training";
  jobId?: string | null;
  datasetId?: string | null;
  actorKeyId: string | null;
  /** false: register the version but leave `latest` where it is (promote `if_better` that lost). */
  moveLatest?: boolean;
  /** Reason recorded on the `latest` move. */
  reason?: string;
  /**
   * A condition (SQL boolean) evaluated inside the batch: when false the version insert fails
   * (tenant_id NOT NULL) and D1 rolls the whole batch back, so a raced second /complete registers
   * nothing.
   */
  guard?: SQL;
};

/**
 * The statements that register a version: create the model if new, insert the version with the next
 * number, record the `latest` move and move it. Callers run them in one `db.batch` (one transaction
 * on D1), optionally with their own statements, so a failure leaves nothing half-registered.
 */
export function registerVersionStatements(db: Db, v: RegisterInput) {
  const modelId = sql`(select id from ${models} where tenant_id = ${v.tenantId} and name = ${v.modelName})`;
  return [
    db
      .insert(models)
      .values({ id: newId("mdl"), tenantId: v.tenantId, name: v.modelName, modality: v.modality })
      .onConflictDoNothing(),
    db.insert(modelVersions).values({
      id: v.versionId,
      tenantId: v.guard ? sql`(select ${v.tenantId} where ${v.guard})` : v.tenantId,
      modelId,
      version: sql`(select coalesce(max(version), 0) + 1 from ${modelVersions} where model_id = ${modelId})`,
      modality: v.modality,
      dims: v.dims,
      manifest: v.manifest,
      files: v.files,
      source: v.source,
      jobId: v.jobId ?? null,
      datasetId: v.datasetId ?? null,
      createdBy: v.actorKeyId,
    }),
    ...(v.moveLatest === false
      ? []
      : moveAliasStatements(db, {
          tenantId: v.tenantId,
          modelId,
          alias: "latest",
          versionId: v.versionId,
          actorKeyId: v.actorKeyId,
          reason: v.reason,
        })),
  ] as const;
}

/** A 409 when `name` already holds encoders of another modality (a model serves one input kind). */
export async function checkModelModality(db: Db, tenantId: string, name: string, modality: Modality) {
  const existing = await db.query.models.findFirst({
    where: and(eq(models.tenantId, tenantId), eq(models.name, name)),
  });
  if (existing && existing.modality !== modality) {
    throw conflict(
      `Model \`${name}\` holds ${existing.modality} encoders; this manifest is ${modality}. Use another name.`,
    );
  }
}

/** The `name@N` of a version id, or null. */
export async function refOfVersion(db: Db, versionId: string | null): Promise<string | null> {
  if (!versionId) return null;
  const [row] = await db
    .select({ name: models.name, version: modelVersions.version })
    .from(modelVersions)
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .where(eq(modelVersions.id, versionId));
  return row ? `${row.name}@${row.version}` : null;
}

export function moveAliasStatements(
  db: Db,
  a: {
    tenantId: string;
    modelId: string | ReturnType<typeof sql>;
    alias: string;
    versionId: string;
    actorKeyId: string | null;
    reason?: string;
  },
) {
  // Evicted as the move is prepared; every caller that runs the batch evicts again after it (forgetAliases),
  // so a request that read the old alias while the batch ran does not keep it for the TTL.
  forgetAliases(a.tenantId);
  const from = sql`(select version_id from ${modelAliases} where model_id = ${a.modelId} and alias = ${a.alias})`;
  return [
    db.insert(aliasEvents).values({
      id: newId("aev"),
      tenantId: a.tenantId,
      modelId: a.modelId,
      alias: a.alias,
      fromVersionId: from,
      toVersionId: a.versionId,
      actorKeyId: a.actorKeyId,
      reason: a.reason ?? null,
    }),
    db
      .insert(modelAliases)
      .values({ modelId: a.modelId, alias: a.alias, versionId: a.versionId })
      .onConflictDoUpdate({
        target: [modelAliases.modelId, modelAliases.alias],
        set: { versionId: a.versionId, updatedAt: Date.now() },
      }),
  ] as const;
}
