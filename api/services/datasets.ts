import { and, eq, isNull } from "drizzle-orm";
import { datasets, type Modality } from "../../db/schema";
import { notFound } from "../lib/errors";
import type { Presign } from "../lib/s3";
import type { Db } from "../middleware/init";
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

/** Fresh presigned URLs for a dataset's upload: the whole object, or the requested parts (default all). */
export async function uploadTarget(
  presign: Presign,
  d: { objectKey: string; bytes: number; uploadId: string | null },
  only?: number[],
): Promise<UploadTarget> {
  const plan = planUpload(d.bytes);
  if (plan.kind === "single" || !d.uploadId) return { type: "single", ...(await presign("PUT", d.objectKey)) };
  const wanted = only ?? Array.from({ length: plan.parts }, (_, i) => i + 1);
  const parts = [];
  let expiresAt = "";
  for (const n of wanted.filter((n) => n >= 1 && n <= plan.parts)) {
    const s = await presign("PUT", d.objectKey, { partNumber: String(n), uploadId: d.uploadId });
    parts.push({ partNumber: n, url: s.url });
    expiresAt = s.expiresAt;
  }
  return { type: "multipart", uploadId: d.uploadId, partSize: plan.partSize, parts, expiresAt };
}

type DatasetRow = typeof datasets.$inferSelect;

/** The whole object as one stream (one R2 operation). */
async function openObject(bucket: R2Bucket, key: string): Promise<ReadableStream<Uint8Array>> {
  const obj = await bucket.get(key);
  if (!obj) throw new Error(`object ${key} vanished`);
  return obj.body;
}

/**
 * Runs the check of the dataset's modality on its stored object: SHA-256, format, every record,
 * stats. Throws only when storage fails (the caller then leaves the dataset retryable).
 */
export async function checkDataset(
  bucket: R2Bucket,
  d: Pick<DatasetRow, "modality" | "format" | "purpose" | "objectKey">,
  size: number,
): Promise<CheckResult<Record<string, unknown>>> {
  if (d.modality === "image") {
    const range = async (offset: number, length: number) => {
      const obj = await bucket.get(d.objectKey, { range: { offset, length } });
      if (!obj) throw new Error(`object ${d.objectKey} vanished`);
      return new Uint8Array(await obj.arrayBuffer());
    };
    return checkImageDataset(
      { size, range, stream: () => openObject(bucket, d.objectKey) },
      { format: d.format as ImageFormat, purpose: d.purpose },
    );
  }
  const body = await openObject(bucket, d.objectKey);
  if (d.modality === "timeseries") {
    return checkSeriesDataset(body, { format: d.format as SeriesFormat, purpose: d.purpose });
  }
  return checkTextDataset(body, { format: d.format as TextFormat, purpose: d.purpose });
}
