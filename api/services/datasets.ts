import { and, eq, isNull } from "drizzle-orm";
import { datasets } from "../../db/schema";
import { notFound } from "../lib/errors";
import type { Presign } from "../lib/s3";
import type { Db } from "../middleware/init";

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
