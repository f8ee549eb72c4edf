// What evaluations and dataset probes share on the work queue: embedding a set chunk by chunk into
// R2 (each chunk's vectors under the version/precision's cache, its inputs one by one and the chunk
// as one bundle), reading the stored chunks back for the fit, the stored request, and how a failure
// is recorded. Knows nothing of Hono.
import { eq } from "drizzle-orm";
import { modelVersions } from "../../../db/schema";
import type { Db } from "../../db";
import { ApiError, unprocessable } from "../../lib/errors";
import { findDataset } from "../datasets";
import type { GraphOutput } from "../encoder/embed";
import type { Precision } from "../encoder/sessions";
import { type EmbedStats, embedWithCache, type ProbeVersion } from "../probe/embeddings";
import type { Example } from "../probe/fit";
import { probeInputKey, runtimeEmbed } from "../probes";
import type { VersionRow } from "../registry";
import type { Storage } from "../storage";

/**
 * Inputs one chunk embeds: ~1-4 s of a small text encoder on a Worker, far from the consumer's CPU
 * limit, and small enough that a retried chunk repeats little.
 */
export const DEFAULT_CHUNK_ITEMS = 128;

/**
 * Rows per ORT run in background embedding: one run holds the isolate (requests wait behind it), and
 * 8 rows of a small text encoder take ~10-50 ms where a full micro-batch took several hundred.
 */
export const BACKGROUND_MAX_ROWS = 8;

/** One embedding pass: a version's embeddings (or a fine-tuned head's logits) of a list of inputs. */
export type Pass = { version: ProbeVersion; precision: Precision; output: GraphOutput; inputs: Example[] };

const cacheId = (p: Pass) => `${p.version.id}/${p.precision}${p.output === "logits" ? "/logits" : ""}`;

const embedChunk = (storage: Storage, pass: Pass, offset: number, size: number) =>
  embedWithCache(
    storage,
    cacheId(pass),
    pass.inputs.slice(offset, offset + size),
    probeInputKey,
    runtimeEmbed(storage, pass.version, pass.precision, pass.output, { maxRows: BACKGROUND_MAX_ROWS }),
  );

/**
 * Embeds inputs [offset, offset + size) of a pass and stores them (idempotent: a chunk already
 * stored is one bundle read). The encoder runs take the isolate's encoder lock like requests do.
 */
export async function embedPassChunk(storage: Storage, pass: Pass, offset: number, size: number): Promise<EmbedStats> {
  return (await embedChunk(storage, pass, offset, size)).stats;
}

/** A pass's vectors in input order, read back chunk by chunk (the same chunking stored them). */
export async function passVectors(storage: Storage, pass: Pass, size: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let offset = 0; offset < pass.inputs.length; offset += size) {
    out.push(...(await embedChunk(storage, pass, offset, size)).vectors);
  }
  return out;
}

/** A version by id: the consumer works on the version the request resolved, whatever aliases did since. */
export async function versionById(db: Db, id: string): Promise<VersionRow> {
  const v = await db.query.modelVersions.findFirst({ where: eq(modelVersions.id, id) });
  if (!v) throw new ApiError(404, "not_found", `model version ${id} was deleted while this work waited.`);
  return v;
}

/**
 * The last plan (examples read from the datasets, split) this isolate made, by work id: the chunks
 * of one task usually arrive at the same isolate one after another, and reading a set again (an
 * image set's archive, IDX images encoded as PNG) would block it for every chunk. Another isolate,
 * or this one after other work, plans again: plans are deterministic. One entry, so an isolate
 * holds at most one set between chunks.
 */
const held: { key: string; value: unknown } = { key: "", value: undefined };

export async function heldPlan<T>(key: string, make: () => Promise<T>): Promise<T> {
  if (held.key === key) return held.value as T;
  held.key = "";
  held.value = undefined;
  const value = await make();
  held.key = key;
  held.value = value;
  return value;
}

export function dropPlan(key: string) {
  if (held.key !== key) return;
  held.key = "";
  held.value = undefined;
}

/** The plan's datasets are still there and ready (a held plan skips reading them; deleting one still stops the work). */
export async function checkDatasets(db: Db, tenantId: string, ids: (string | null)[]) {
  for (const id of ids) {
    if (!id) continue;
    const d = await findDataset(db, tenantId, id);
    if (d.status !== "ready") {
      throw unprocessable(`dataset ${id} is ${d.status}, no longer ready; send the work again once it is.`, [
        { path: "dataset", message: `is ${d.status}, not ready` },
      ]);
    }
  }
}

/** Where a request's body waits for the consumer (inline sets can outgrow a D1 row). */
export const requestKey = (kind: "evaluations" | "probes", tenantId: string, id: string) =>
  `work/${kind}/${tenantId}/${id}/request.json`;

export async function storeRequest(storage: Storage, key: string, body: unknown) {
  await storage.put(key, JSON.stringify(body), "application/json");
}

export async function loadRequest<T>(storage: Storage, key: string): Promise<T> {
  const obj = await storage.get(key);
  if (!obj) throw new ApiError(404, "not_found", "this work's request is missing from storage; send it again.");
  return (await obj.json()) as T;
}

/** Why background work failed, shaped like a problem: what GET shows under `error`. */
export type WorkError = {
  title: string;
  detail: string;
  status?: number;
  errors?: { path: string; message: string }[];
};

/** Problems a request would have answered (the data changed under the work): retrying will not help. */
export const isFinal = (e: unknown): e is ApiError => e instanceof ApiError && e.status < 500;

export function workError(e: unknown): WorkError {
  if (e instanceof ApiError) {
    return {
      title: e.status < 500 ? "The work's input was refused" : "The work failed",
      detail: e.message,
      status: e.status,
      ...(e.errors ? { errors: e.errors } : {}),
    };
  }
  return { title: "The work failed", detail: e instanceof Error ? e.message : String(e) };
}
