// Probes on stored sets and model versions: reading labeled inputs (inline, or a probe dataset from
// R2) in the model's modality, embedding through the encoder runtime (cached), and keeping weights
// in R2. Knows nothing of Hono.
import { and, desc, eq } from "drizzle-orm";
import { models, modelVersions, probes } from "../../db/schema";
import type { Db } from "../db";
import { ApiError, badRequest, conflict, notFound, unprocessable } from "../lib/errors";
import { ArchiveError } from "./archive/bytes";
import { type RecordSource, RecordsError, readRecords, readTextRecords } from "./dataset_records";
import { findDataset } from "./datasets";
import { type GraphOutput, toBase64 } from "./encoder/embed";
import { embedderFor } from "./encoder/embedders";
import { looksLikeText } from "./encoder/image";
import { modalItemKey, tooLarge } from "./encoder/items";
import { parseModalInput } from "./encoder/modal";
import { getEncoder, type Precision } from "./encoder/sessions";
import type { Manifest } from "./manifest";
import type { Embed, ProbeVersion } from "./probe/embeddings";
import { type Example, MAX_PROBE_EXAMPLES, type ProbeInput, type ProbeWeights } from "./probe/fit";
import type { Storage } from "./storage";

export type LabeledSource = { input: unknown; label: string | number }[] | { dataset: string };
/** Where probes read from: D1 for dataset rows, R2 for their bytes (whole objects and ranges). */
export type ProbeContext = { db: Db; storage: Storage; bucket: RecordSource; tenantId: string };

/** An image probe set is read into memory whole (every image is embedded); beyond this, subsample. */
export const MAX_PROBE_SET_BYTES = 24 * 1024 * 1024;
/** Values (points × channels) of a series probe set: they are held as JS numbers while embedding. */
export const MAX_PROBE_SERIES_VALUES = 2_000_000;

const NOUN = { text: "text", image: "image", timeseries: "series" } as const;
const A = { text: "a text", image: "an image", timeseries: "a time-series" } as const;
const FORMS = {
  text: "send text (a string)",
  image: "send a base64 PNG/JPEG string or a data:image/png;base64,… URL",
  timeseries: "send number[] (one channel) or number[][] (channels × time)",
} as const;

/**
 * One probe input in the form the version's modality takes (decision 0005), or a problem naming
 * `at`: 400 for a wrong JSON type (numbers for a text model, …), 422 for text sent to an image or
 * series model.
 */
export function parseProbeInput(version: ProbeVersion, ref: string, input: unknown, at: string): ProbeInput {
  const modality = version.modality;
  if (modality === "text") {
    if (typeof input === "string") return input;
    throw badRequest(`${at}: ${ref} is a text encoder; ${FORMS.text}, not numbers or arrays.`, [
      { path: at, message: "must be text (a string) for a text encoder" },
    ]);
  }
  if (typeof input === "string" && (modality === "timeseries" || looksLikeText(input))) {
    throw unprocessable(
      `${at}: ${ref} is ${modality === "image" ? "an image" : "a time-series"} encoder, but probe inputs are text; ${FORMS[modality]}.`,
      [{ path: at, message: `must be ${modality === "image" ? "a base64 image" : "numbers"}, not text` }],
    );
  }
  const items = parseModalInput(version.manifest as Manifest, input, at);
  if (items.length !== 1) {
    throw badRequest(`${at}: one example is one ${NOUN[modality]}; got ${items.length}. ${FORMS[modality]}.`, [
      { path: at, message: `must be one ${NOUN[modality]}` },
    ]);
  }
  return items[0] as ProbeInput;
}

/** The bytes (or text) whose SHA-256 keys an input in the embedding cache. */
export const probeInputKey = (x: { input: ProbeInput }): string | Uint8Array =>
  typeof x.input === "string" ? x.input : modalItemKey(x.input);

/**
 * Labeled examples from the request body, or from a ready `purpose: "probe"` dataset of the model's
 * modality (text: jsonl `{text, label}`; image: class folders or IDX labels; series: labeled records).
 */
export async function loadExamples(
  ctx: ProbeContext,
  version: ProbeVersion,
  ref: string,
  source: LabeledSource,
  field: string,
): Promise<{ examples: Example[]; datasetId: string | null }> {
  if (Array.isArray(source)) {
    const examples = source.map((e, i) => {
      const at = `${field}[${i}].input`;
      return { input: parseProbeInput(version, ref, e.input, at), label: String(e.label), at };
    });
    return { examples, datasetId: null };
  }
  const d = await findDataset(ctx.db, ctx.tenantId, source.dataset);
  const path = `${field}.dataset`;
  if (d.purpose !== "probe") {
    throw unprocessable(
      `${path}: dataset ${d.id} is a ${d.purpose} set; probes read labeled \`purpose: "probe"\` sets.`,
      [{ path, message: "must be a probe dataset" }],
    );
  }
  if (d.modality !== version.modality) {
    throw unprocessable(
      `${path}: dataset ${d.id} holds ${d.modality}, but ${ref} is ${A[version.modality]} encoder; use ${A[version.modality]} probe set.`,
      [{ path, message: `must be ${A[version.modality]} probe set` }],
    );
  }
  if (d.status !== "ready") {
    throw unprocessable(
      `${path}: dataset ${d.id} is ${d.status}; wait until it is ready (GET /v1/datasets/${d.id}) or fix its errors.`,
      [{ path, message: `is ${d.status}, not ready` }],
    );
  }
  const records = Number((d.stats as { records?: number } | null)?.records ?? 0);
  if (records > MAX_PROBE_EXAMPLES) {
    throw tooLarge(
      `${path}: dataset ${d.id} has ${records} records; one probe or evaluation takes at most ${MAX_PROBE_EXAMPLES}. Upload a subsample.`,
      path,
    );
  }
  const read = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      // The set passed its check; a failure now means its stored object is not the checked one.
      if (!(e instanceof RecordsError || e instanceof ArchiveError)) throw e;
      throw conflict(`${path}: ${e.message}.`, [{ path, message: e.message }]);
    }
  };
  if (d.modality === "text") return { examples: await read(() => textExamples(ctx.bucket, d, path)), datasetId: d.id };
  // The decompressed size bounds memory: an IDX member is buffered whole, and gzip hides its size.
  const stats = (d.stats ?? {}) as { decompressed_bytes?: number; points?: number };
  const expanded = Math.max(d.bytes, Number(stats.decompressed_bytes ?? 0));
  if (d.modality === "image" && expanded > MAX_PROBE_SET_BYTES) {
    throw tooLarge(
      `${path}: dataset ${d.id} is ${expanded} bytes decompressed; an image probe set is read whole inside the Worker, at most ${MAX_PROBE_SET_BYTES}. Upload a subsample or smaller images.`,
      path,
    );
  }
  if (d.modality === "timeseries" && Number(stats.points ?? 0) > MAX_PROBE_SERIES_VALUES) {
    throw tooLarge(
      `${path}: dataset ${d.id} has ${stats.points} values (points × channels); one probe or evaluation takes at most ${MAX_PROBE_SERIES_VALUES}. Upload fewer or shorter series.`,
      path,
    );
  }
  const rows = await read(() => readRecords(ctx.bucket, d, MAX_PROBE_EXAMPLES));
  const examples: Example[] = [];
  for (const r of rows) {
    // The dataset check required a label on every record of a probe set; skip defensively.
    if (r.label !== undefined) examples.push({ input: r.item, label: r.label, at: `${path} ${r.name ?? ""}`.trim() });
  }
  return { examples, datasetId: d.id };
}

async function textExamples(bucket: RecordSource, d: Parameters<typeof readRecords>[1], path: string) {
  if (!d.format.startsWith("jsonl")) {
    throw unprocessable(
      `${path}: dataset ${d.id} is a ${d.format} set; text probes read jsonl sets of {"text", "label"} lines.`,
      [{ path, message: "must be a probe jsonl dataset" }],
    );
  }
  const rows = await readTextRecords(bucket, d, MAX_PROBE_EXAMPLES);
  return rows.map((r): Example => ({ input: r.text, label: r.label }));
}

// Inputs per call into the runtime; it splits them into micro-batches under its memory budget.
const EMBED_CHUNK = 512;

/** An embedding error about `input[i]` of a runtime call, re-addressed to the example it came from. */
export function readdress(e: unknown, chunk: { at?: string }[]): unknown {
  if (!(e instanceof ApiError)) return e;
  const re = /^input(?:\[(\d+)\])?/;
  const m = re.exec(e.errors?.[0]?.path ?? "");
  const at = m ? chunk[m[1] === undefined ? 0 : Number(m[1])]?.at : undefined;
  if (!m || !at) return e;
  return new ApiError(e.status, e.code, e.message.replace(re, at), {
    errors: e.errors?.map((x) => ({ ...x, path: x.path.replace(re, at) })),
  });
}

/**
 * The /v1/embeddings runtime for one version: same sessions, batching and budget, any modality;
 * `logits` reads a fine-tuned version's head instead of the embedding; `maxRows` caps the rows of
 * one ORT run (background work, so requests are not held behind a long run).
 */
export function runtimeEmbed(
  storage: Storage,
  version: ProbeVersion,
  precision: Precision,
  output: GraphOutput = "embedding",
  opts: { maxRows?: number } = {},
): Embed<{ input: ProbeInput; at?: string }> {
  const manifest = version.manifest as Manifest;
  const embedder = embedderFor(manifest.modality);
  return async (inputs) => {
    const enc = await getEncoder(storage, { id: version.id, manifest, files: version.files }, precision);
    const out: Float32Array[] = [];
    // Background calls also tokenize (or decode) a few runs' inputs at a time, not the whole chunk.
    const perCall = opts.maxRows === undefined ? EMBED_CHUNK : 4 * opts.maxRows;
    for (let i = 0; i < inputs.length; i += perCall) {
      const chunk = inputs.slice(i, i + perCall);
      try {
        // Fewer rows per run (never more than the encoder allows: int8 runs one) keep each ORT run,
        // which holds the isolate, short.
        const maxRows = opts.maxRows === undefined ? undefined : Math.min(opts.maxRows, enc.maxRows);
        const { vectors } = await embedder.embed(
          enc,
          chunk.map((x) => x.input),
          { truncate: true, output, ...(maxRows ? { batching: { maxRows } } : {}) },
        );
        out.push(...vectors);
      } catch (e) {
        // Text inputs were checked one by one when they were read; their errors stay as they are.
        throw manifest.modality === "text" ? e : readdress(e, chunk);
      }
    }
    return out;
  };
}

export const weightsKey = (tenantId: string, probeId: string) => `probes/${tenantId}/${probeId}/weights.json`;

// Large numeric arrays travel as base64 float32 (a kNN probe keeps its whole train set, an MLP its
// hidden layer).
const F32_FIELDS = ["mean", "scale", "W", "b", "train", "W1", "b1", "W2", "b2"] as const;

const f32ToBase64 = (values: number[]) => toBase64(Float32Array.from(values));

function base64ToF32(s: string): number[] {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return Array.from(new Float32Array(bytes.buffer));
}

export async function storeWeights(storage: Storage, key: string, w: ProbeWeights) {
  const doc: Record<string, unknown> = { ...w };
  for (const f of F32_FIELDS) if (f in doc) doc[f] = { f32: f32ToBase64(doc[f] as number[]) };
  return storage.put(key, JSON.stringify(doc), "application/json");
}

export async function loadWeights(storage: Storage, key: string): Promise<ProbeWeights> {
  const obj = await storage.get(key);
  if (!obj) throw notFound("This probe's weights are missing from storage; create the probe again.");
  const doc = (await obj.json()) as Record<string, unknown>;
  for (const f of F32_FIELDS) if (f in doc) doc[f] = base64ToF32((doc[f] as { f32: string }).f32);
  return doc as unknown as ProbeWeights;
}

export type ProbeRow = typeof probes.$inferSelect;

/** Inserts a fitted probe's row. */
export async function insertProbe(db: Db, values: Omit<typeof probes.$inferInsert, "createdAt">): Promise<ProbeRow> {
  const [row] = await db.insert(probes).values(values).returning();
  if (!row) throw new Error("insert returned no row");
  return row;
}

/** A probe of this tenant with the model ref it ran on, or a 404 naming the id. */
export async function findProbe(db: Db, tenantId: string, id: string) {
  const rows = await probeQuery(db).where(and(eq(probes.id, id), eq(probes.tenantId, tenantId)));
  const row = rows[0];
  if (!row) throw notFound(`No probe \`${id}\` in this tenant; GET /v1/probes lists them.`);
  return row;
}

export async function listProbes(db: Db, tenantId: string, versionId?: string) {
  return probeQuery(db)
    .where(and(eq(probes.tenantId, tenantId), versionId ? eq(probes.modelVersionId, versionId) : undefined))
    .orderBy(desc(probes.createdAt), desc(probes.id));
}

const probeQuery = (db: Db) =>
  db
    .select({ probe: probes, modelName: models.name, version: modelVersions.version, version_row: modelVersions })
    .from(probes)
    .innerJoin(modelVersions, eq(modelVersions.id, probes.modelVersionId))
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .$dynamic();

/**
 * The inputs of a predict call in the forms /v1/embeddings takes for the version's modality:
 * text (a string or strings), images (base64 or data URLs), series (number arrays).
 */
export function parsePredictInputs(version: ProbeVersion, ref: string, raw: unknown): ProbeInput[] {
  if (version.modality === "text") {
    const list = typeof raw === "string" ? [raw] : raw;
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
      throw badRequest(`input: ${ref} is a text encoder; send a string or an array of strings.`, [
        { path: "input", message: "must be text: a string or an array of strings" },
      ]);
    }
    const empty = list.findIndex((x) => x.length === 0);
    if (empty >= 0) {
      throw badRequest(`input[${empty}]: must not be empty; send at least one character.`, [
        { path: `input[${empty}]`, message: "must not be empty" },
      ]);
    }
    return list;
  }
  const strings = typeof raw === "string" ? [raw] : Array.isArray(raw) ? raw.filter((x) => typeof x === "string") : [];
  if (strings.length > 0 && (version.modality === "timeseries" || strings.some((x) => looksLikeText(x)))) {
    parseProbeInput(
      version,
      ref,
      strings.find((x) => version.modality === "timeseries" || looksLikeText(x)),
      "input",
    );
  }
  return parseModalInput(version.manifest as Manifest, raw, "input");
}
