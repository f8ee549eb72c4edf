// Probes on stored sets and model versions: reading a probe dataset from R2, embedding through the
// encoder runtime (cached), and keeping weights in R2. Knows nothing of Hono.
import { and, desc, eq } from "drizzle-orm";
import { models, modelVersions, probes } from "../../db/schema";
import { badRequest, notFound, unprocessable } from "../lib/errors";
import type { Db } from "../middleware/init";
import { findDataset } from "./datasets";
import { embedSequences } from "./encoder/embed";
import { prepareInputs } from "./encoder/inputs";
import { getEncoder, type Precision } from "./encoder/sessions";
import type { Manifest } from "./manifest";
import type { Embed, ProbeVersion } from "./probe/embeddings";
import { type Example, MAX_PROBE_EXAMPLES, type ProbeWeights, tooLarge } from "./probe/fit";
import type { Storage } from "./storage";
import "./probe/wasm_module";
import { toBase64 } from "./encoder/embed";

export type LabeledSource = { input: string; label: string | number }[] | { dataset: string };

/** Examples from the request body or from a `purpose: "probe"` jsonl dataset of `{text, label}` lines. */
export async function loadExamples(
  db: Db,
  storage: Storage,
  tenantId: string,
  source: LabeledSource,
  field: string,
): Promise<{ examples: Example[]; datasetId: string | null }> {
  if (Array.isArray(source)) {
    return { examples: source.map((e) => ({ input: e.input, label: String(e.label) })), datasetId: null };
  }
  const d = await findDataset(db, tenantId, source.dataset);
  const path = `${field}.dataset`;
  if (d.purpose !== "probe" || !d.format.startsWith("jsonl")) {
    throw unprocessable(
      `${path}: dataset ${d.id} is a ${d.purpose} ${d.format} set; probes read \`purpose: "probe"\` jsonl sets of {"text", "label"} lines.`,
      [{ path, message: "must be a probe jsonl dataset" }],
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
      `${path}: dataset ${d.id} has ${records} records; one synchronous probe takes at most ${MAX_PROBE_EXAMPLES}. Upload a subsample.`,
      path,
    );
  }
  const obj = await storage.get(d.objectKey);
  if (!obj) throw notFound(`${path}: the bytes of dataset ${d.id} are gone; upload it again.`);
  let stream: ReadableStream<Uint8Array> = obj.body;
  if (d.format.endsWith(".gz")) stream = stream.pipeThrough(new DecompressionStream("gzip"));
  const text = await new Response(stream).text();
  const examples: Example[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    // The dataset check already validated every line; skip defensively rather than fail a probe.
    const r = JSON.parse(line) as { text?: unknown; label?: unknown };
    if (typeof r.text === "string" && r.text !== "" && (typeof r.label === "string" || typeof r.label === "number")) {
      examples.push({ input: r.text, label: String(r.label) });
    }
  }
  return { examples, datasetId: d.id };
}

/** Probes embed text; a version of another modality is refused with what to use instead. */
export function checkModality(version: ProbeVersion, ref: string, field = "model") {
  if (version.modality !== "text") {
    throw unprocessable(
      `${field}: ${ref} is a ${version.modality} encoder, but probe inputs are text; pick a text model or send ${version.modality} inputs to a ${version.modality} probe (not supported yet).`,
      [{ path: field, message: `${ref} is not a text encoder` }],
    );
  }
}

// Texts per call into the runtime; it splits them into micro-batches under its memory budget.
const EMBED_CHUNK = 512;

/** The /v1/embeddings runtime for one version: same sessions, batching and budget. */
export function runtimeEmbed(storage: Storage, version: ProbeVersion, precision: Precision): Embed {
  const manifest = version.manifest as Manifest;
  return async (texts) => {
    const enc = await getEncoder(storage, { id: version.id, manifest, files: version.files }, precision);
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += EMBED_CHUNK) {
      const { sequences } = prepareInputs(texts.slice(i, i + EMBED_CHUNK), {
        tokenizer: enc.tokenizer,
        maxTokens: manifest.max_tokens ?? 512,
        truncate: true,
        vocabSize: enc.tokenizer?.vocabSize,
      });
      out.push(...(await embedSequences(enc, sequences)));
    }
    return out;
  };
}

export const weightsKey = (tenantId: string, probeId: string) => `probes/${tenantId}/${probeId}/weights.json`;

// Large numeric arrays travel as base64 float32 (a kNN probe keeps its whole train set).
const F32_FIELDS = ["mean", "scale", "W", "b", "train"] as const;

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

export function checkPredictInputs(input: string[]) {
  const empty = input.findIndex((s) => s.length === 0);
  if (empty >= 0) {
    throw badRequest(`input[${empty}]: must not be empty; send at least one character.`, [
      { path: `input[${empty}]`, message: "must not be empty" },
    ]);
  }
}
