import { and, eq, isNull } from "drizzle-orm";
import { datasets, type Modality } from "../../db/schema";
import type { Db } from "../db";
import { notFound } from "../lib/errors";
import type { Presign } from "../lib/s3";
import { type CheckResult, checkTextDataset, TEXT_FORMATS, type TextFormat } from "./dataset_check";
import { checkImageDataset, IMAGE_FORMATS, type ImageFormat } from "./dataset_check_image";
import { checkSeriesDataset, SERIES_FORMATS, type SeriesFormat } from "./dataset_check_series";

/** The `format`s each modality accepts (decision 0005). */
export const FORMATS: Record<Modality, readonly string[]> = {
  text: TEXT_FORMATS,
  image: IMAGE_FORMATS,
  timeseries: SERIES_FORMATS,
};

// Above this size uploads go multipart; R2 parts are 5 MiB–5 GiB, equal but the last, at most 10,000.
export const SINGLE_PUT_MAX_BYTES = 64 * 1024 * 1024;
export const MIN_PART_BYTES = 8 * 1024 * 1024;
export const MAX_PARTS = 10_000;
export const MAX_DATASET_BYTES = 5 * 1024 * 1024 * 1024 * 1024; // R2's object limit (5 TiB)

export type UploadPlan = { kind: "single" } | { kind: "multipart"; partSize: number; parts: number };

export function planUpload(bytes: number): UploadPlan {
  if (bytes <= SINGLE_PUT_MAX_BYTES) return { kind: "single" };
  const MiB = 1024 * 1024;
  const partSize = Math.max(MIN_PART_BYTES, Math.ceil(bytes / MAX_PARTS / MiB) * MiB);
  return { kind: "multipart", partSize, parts: Math.ceil(bytes / partSize) };
}

export async function findDataset(db: Db, tenantId: string, id: string) {
  const d = await db.query.datasets.findFirst({
    where: and(eq(datasets.id, id), eq(datasets.tenantId, tenantId), isNull(datasets.deletedAt)),
  });
  if (!d) throw notFound(`No dataset \`${id}\` in this tenant; GET /v1/datasets lists them.`);
  return d;
}

export type UploadTarget =
  | { type: "single"; method: "GET" | "PUT"; url: string; expiresAt: string }
  | {
      type: "multipart";
      uploadId: string;
      partSize: number;
      parts: { partNumber: number; url: string }[];
      expiresAt: string;
    };

/**
 * Where presigned uploads (and PUT /content) land. /complete checks this object and copies the
 * checked version to `objectKey`, for which no URL is ever signed: a presigned PUT stays valid for
 * 15 minutes, and a late one must not replace bytes that were checked or recreate a deleted set.
 * Readers (probes, evaluations, the trainer's claim) read only `objectKey`; a staging object left
 * behind (a PUT after /complete or DELETE) is garbage nothing reads.
 */
export const stagingKey = (objectKey: string) => `staging/${objectKey}`;

/** Fresh presigned URLs for a dataset's upload to its staging key: the whole object, or the requested parts (default all). */
export async function uploadTarget(
  presign: Presign,
  d: { objectKey: string; bytes: number; uploadId: string | null },
  only?: number[],
): Promise<UploadTarget> {
  const plan = planUpload(d.bytes);
  const key = stagingKey(d.objectKey);
  if (plan.kind === "single" || !d.uploadId) return { type: "single", ...(await presign("PUT", key)) };
  const wanted = only ?? Array.from({ length: plan.parts }, (_, i) => i + 1);
  const parts = [];
  let expiresAt = "";
  for (const n of wanted.filter((n) => n >= 1 && n <= plan.parts)) {
    const s = await presign("PUT", key, { partNumber: String(n), uploadId: d.uploadId });
    parts.push({ partNumber: n, url: s.url });
    expiresAt = s.expiresAt;
  }
  return { type: "multipart", uploadId: d.uploadId, partSize: plan.partSize, parts, expiresAt };
}

/** How many parts the upload of `bytes` has (1 for a single PUT). */
export function partCount(bytes: number): number {
  const plan = planUpload(bytes);
  return plan.kind === "multipart" ? plan.parts : 1;
}

/**
 * The part numbers (1..N of the dataset's plan) missing from a multipart /complete, in order.
 * R2 would assemble the parts it was given into a shorter object, which then fails the size check
 * for good; answering 400 first keeps the upload retryable.
 */
export function missingParts(bytes: number, sent: readonly number[]): number[] {
  const total = partCount(bytes);
  const have = new Set(sent);
  const missing: number[] = [];
  for (let n = 1; n <= total; n++) if (!have.has(n)) missing.push(n);
  return missing;
}

/** `[1,2,3,7,9,10]` -> `1-3, 7, 9-10`: a readable list of part numbers. */
export function partRanges(ns: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && (ns[j + 1] as number) === (ns[j] as number) + 1) j++;
    out.push(i === j ? String(ns[i]) : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return out.join(", ");
}

type DatasetRow = typeof datasets.$inferSelect;

/** One version of a stored object: what /complete checked is exactly what it copies. */
export type ObjectVersion = { key: string; etag: string; size: number };

/** The object changed (a late PUT replaced it) or vanished while /complete read it; retry /complete. */
export class ObjectChanged extends Error {}

/** `get` of exactly the version `v`; a replaced or deleted object is an ObjectChanged, never other bytes. */
export async function getVersion(bucket: R2Bucket, v: ObjectVersion, range?: R2Range): Promise<R2ObjectBody> {
  const obj = await bucket.get(v.key, { onlyIf: { etagMatches: v.etag }, ...(range ? { range } : {}) });
  // A failed precondition answers the object's metadata without a body.
  if (!obj || !("body" in obj)) throw new ObjectChanged(`object ${v.key} changed or vanished while being read`);
  return obj;
}

/**
 * Runs the check of the dataset's modality on one version of its staged object in one go: SHA-256,
 * format, every record, stats. Throws only when storage fails or the object changed (the caller then
 * leaves the dataset retryable). Formats that can resume mid-file go through dataset_check_state.ts
 * instead; this path serves gzipped sets and image archives.
 *
 * @param onProgress called with the bytes read so far, every PROGRESS_BYTES, and awaited (it may write the row).
 */
export async function checkDataset(
  bucket: R2Bucket,
  d: Pick<DatasetRow, "modality" | "format" | "purpose">,
  v: ObjectVersion,
  onProgress?: (bytesRead: number) => Promise<void>,
): Promise<CheckResult<Record<string, unknown>>> {
  const stream = async () => {
    const body = (await getVersion(bucket, v)).body;
    return onProgress ? body.pipeThrough(progressCounter(onProgress)) : body;
  };
  if (d.modality === "image") {
    const range = async (offset: number, length: number) =>
      new Uint8Array(await (await getVersion(bucket, v, { offset, length })).arrayBuffer());
    return checkImageDataset({ size: v.size, range, stream }, { format: d.format as ImageFormat, purpose: d.purpose });
  }
  const body = await stream();
  if (d.modality === "timeseries") {
    return checkSeriesDataset(body, { format: d.format as SeriesFormat, purpose: d.purpose });
  }
  return checkTextDataset(body, { format: d.format as TextFormat, purpose: d.purpose });
}

/** How often a one-go check reports progress (a row write each time). */
export const PROGRESS_BYTES = 8 * 1024 * 1024;

function progressCounter(onProgress: (bytesRead: number) => Promise<void>) {
  let read = 0;
  let reported = 0;
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, ctl) {
      read += chunk.byteLength;
      if (read - reported >= PROGRESS_BYTES) {
        reported = read;
        await onProgress(read);
      }
      ctl.enqueue(chunk);
    },
  });
}

/**
 * Copies version `v` of the staged object to `dest` through the R2 binding: one verified PUT up to
 * the single-PUT size, else a multipart upload whose parts are ranged reads of that same version.
 * Either way `dest` holds the checked bytes or the copy fails (ObjectChanged: `v` was replaced).
 *
 * Args:
 *   bucket: the ARTIFACTS bucket.
 *   v: the checked version of the staging object (key, etag, size).
 *   dest: the final key.
 *   sha256: the checked SHA-256, verified by R2 on the single PUT and kept as metadata.
 *   partSize: multipart part size (>= 5 MiB, R2's minimum); defaults to the upload plan's.
 */
export async function promoteObject(
  bucket: R2Bucket,
  v: ObjectVersion,
  dest: string,
  sha256: string,
  partSize?: number,
): Promise<void> {
  const plan = planUpload(v.size);
  const size = partSize ?? (plan.kind === "multipart" ? plan.partSize : v.size);
  if (v.size <= size) {
    await bucket.put(dest, (await getVersion(bucket, v)).body, { sha256, customMetadata: { sha256 } });
    return;
  }
  const upload = await bucket.createMultipartUpload(dest, { customMetadata: { sha256 } });
  try {
    const parts: R2UploadedPart[] = [];
    for (let offset = 0, n = 1; offset < v.size; offset += size, n++) {
      const part = await getVersion(bucket, v, { offset, length: Math.min(size, v.size - offset) });
      parts.push(await upload.uploadPart(n, part.body));
    }
    await upload.complete(parts);
  } catch (e) {
    await upload.abort().catch(() => {});
    throw e;
  }
}
