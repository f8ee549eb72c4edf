import { z } from "@hono/zod-openapi";
import { DATASET_STATUSES, type datasets, MODALITIES } from "../../../db/schema";
import { iso, Timestamp } from "../../lib/schemas";
import type { DatasetIssue } from "../../services/dataset_check";

/** Where an issue is, as a problem's `errors[].path`: `line 7, column t5`, `member cat/1.png`, or `file`. */
export function issuePath(e: DatasetIssue): string {
  if (e.member) return `member ${e.member}`;
  if (e.line) return e.column ? `line ${e.line}, column ${e.column}` : `line ${e.line}`;
  return "file";
}

export const DatasetSchema = z
  .object({
    id: z.string().openapi({ example: "ds_mi1x2y3zAbCdEfGhIjKl" }),
    object: z.literal("dataset"),
    name: z.string().openapi({ example: "moby-dick" }),
    modality: z.enum(MODALITIES),
    purpose: z.enum(["pretrain", "probe"]),
    format: z.string().openapi({ example: "txt" }),
    bytes: z.number().int().openapi({ example: 262144 }),
    sha256: z.string(),
    status: z.enum(DATASET_STATUSES),
    stats: z
      .record(z.string(), z.unknown())
      .nullable()
      .openapi({
        example: { records: 2210, lines: 2300, empty: 80, duplicates: 10, mean_length: 112.4, max_length: 980 },
      }),
    errors: z
      .array(
        z.object({
          line: z.number().int().optional().openapi({ description: "1-based line of the file (text, series)." }),
          column: z.string().optional().openapi({ description: "CSV header name, or JSON path (`values[3]`)." }),
          member: z.string().optional().openapi({ description: "Archive member (image sets): `cat/001.png`." }),
          message: z.string(),
        }),
      )
      .nullable()
      .openapi({ example: [{ line: 17, message: "not valid UTF-8; re-encode the file as UTF-8" }] }),
    check: z
      .object({
        bytes_done: z.number().int().openapi({ description: "Bytes of the file checked so far." }),
        bytes_total: z.number().int(),
        started_at: z.string().openapi({ description: "When /complete started the check (ISO 8601)." }),
      })
      .nullable()
      .openapi({
        description: "While `validating`: how far the background check has read. Null otherwise.",
        example: { bytes_done: 16777216, bytes_total: 104857600, started_at: "2026-12-06T05:30:00.000Z" },
      }),
    createdAt: Timestamp,
    completedAt: Timestamp.nullable(),
  })
  .openapi("Dataset");

/** The progress part of a `validating` row's check_state (dataset_check_state.ts writes it). */
function checkView(d: typeof datasets.$inferSelect) {
  const s = d.checkState as { bytes_done?: unknown; bytes_total?: unknown; started_at?: unknown } | null;
  if (d.status !== "validating" || !s) return null;
  return {
    bytes_done: Number(s.bytes_done) || 0,
    bytes_total: Number(s.bytes_total) || d.bytes,
    started_at: iso(Number(s.started_at) || d.updatedAt) as string,
  };
}

export function datasetView(d: typeof datasets.$inferSelect) {
  return {
    id: d.id,
    object: "dataset" as const,
    name: d.name,
    modality: d.modality,
    purpose: d.purpose,
    format: d.format,
    bytes: d.bytes,
    sha256: d.sha256,
    status: d.status,
    stats: d.stats ?? null,
    errors: (d.errors as DatasetIssue[] | null) ?? null,
    check: checkView(d),
    createdAt: iso(d.createdAt) as string,
    completedAt: iso(d.completedAt),
  };
}

/** Where to send a dataset's bytes: one presigned PUT, or one per multipart part. */
export const UploadTargetSchema = z
  .union([
    z.object({
      type: z.literal("single"),
      method: z.enum(["GET", "PUT"]),
      url: z.string(),
      expiresAt: z.string(),
    }),
    z.object({
      type: z.literal("multipart"),
      uploadId: z.string(),
      partSize: z.number().int(),
      parts: z.array(z.object({ partNumber: z.number().int(), url: z.string() })),
      expiresAt: z.string(),
    }),
  ])
  .openapi("UploadTarget");
