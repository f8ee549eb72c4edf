import { z } from "@hono/zod-openapi";
import { iso, Timestamp } from "../../lib/schemas";
import type { Head } from "../../services/manifest";
import { formatRef } from "../../services/refs";
import type { ModelRow, VersionRow } from "../../services/registry";

/** What users see of a manifest's head: the labels a classification can answer, and its ONNX output. */
export const HeadView = z.object({
  labels: z.array(z.string()).openapi({ example: ["animal", "plant"], description: "In logit order." }),
  output: z.string().openapi({ example: "logits" }),
  activation: z.literal("softmax"),
});

export const VersionSchema = z
  .object({
    id: z.string().openapi({ example: "mv_mi1x2y3zAbCdEfGhIjKl" }),
    object: z.literal("model.version"),
    model: z.string().openapi({ example: "demo" }),
    version: z.number().int().openapi({ example: 3 }),
    ref: z.string().openapi({ example: "demo@3" }),
    modality: z.enum(["text", "image", "timeseries"]),
    dims: z.number().int().openapi({ example: 128 }),
    source: z.enum(["import", "training"]),
    jobId: z.string().nullable(),
    datasetId: z.string().nullable(),
    initFrom: z.string().nullable().openapi({
      example: "minilm@1",
      description: "Lineage: the version this one was continued from (its job's `init_from`, or the manifest's).",
    }),
    finetunedFrom: z.string().nullable().openapi({
      example: "demo@1",
      description: "Lineage: the version this one was fine-tuned from (its fine-tune job's `base`, or the manifest's).",
    }),
    head: HeadView.nullable().openapi({
      description: "A fine-tuned version's classification head (it serves /v1/classifications); null otherwise.",
    }),
    aliases: z.array(z.string()).openapi({ example: ["latest", "production"] }),
    files: z.record(z.string(), z.object({ sha256: z.string(), bytes: z.number().int() })),
    manifest: z.record(z.string(), z.unknown()),
    createdAt: Timestamp,
  })
  .openapi("ModelVersion");

/**
 * `lineage[key]` (written at /complete from the job) or the manifest's own `key` (the trainer's, or an
 * imported version's).
 */
export function lineageOf(manifest: Record<string, unknown>, key: "init_from" | "finetuned_from"): string | null {
  const lineage = (manifest.lineage as Record<string, unknown> | undefined)?.[key];
  if (typeof lineage === "string") return lineage;
  const own = manifest[key];
  return typeof own === "string" ? own : null;
}

/** The manifest's head as users see it (the manifest schema checked it at registration). */
export function headOf(manifest: Record<string, unknown>): z.infer<typeof HeadView> | null {
  const head = manifest.head as Head | undefined;
  return head ? { labels: head.labels, output: head.output, activation: head.activation } : null;
}

export function versionView(model: ModelRow, v: VersionRow, aliases: string[]) {
  return {
    id: v.id,
    object: "model.version" as const,
    model: model.name,
    version: v.version,
    ref: formatRef(model.name, v.version),
    modality: v.modality,
    dims: v.dims,
    source: v.source,
    jobId: v.jobId,
    datasetId: v.datasetId,
    initFrom: lineageOf(v.manifest, "init_from"),
    finetunedFrom: lineageOf(v.manifest, "finetuned_from"),
    head: headOf(v.manifest),
    aliases,
    files: Object.fromEntries(Object.entries(v.files).map(([k, f]) => [k, { sha256: f.sha256, bytes: f.bytes }])),
    manifest: v.manifest,
    createdAt: iso(v.createdAt) as string,
  };
}

/** OpenAI's model object (`id`, `object`, `created`, `owned_by`) plus the registry's fields. */
export const ModelSchema = z
  .object({
    id: z.string().openapi({ example: "demo" }),
    object: z.literal("model"),
    created: z.number().int().openapi({ example: 1764277200, description: "Unix seconds" }),
    owned_by: z.string().openapi({ example: "tnt_mi1x2y3zAbCdEfGhIjKl" }),
    modality: z.enum(["text", "image", "timeseries"]),
    versions: z.number().int().openapi({ example: 3, description: "Number of versions" }),
    aliases: z.record(z.string(), z.number().int()).openapi({ example: { latest: 3, production: 2 } }),
  })
  .openapi("Model");

export function modelView(m: ModelRow, versions: number, aliases: { alias: string; version: number }[]) {
  return {
    id: m.name,
    object: "model" as const,
    created: Math.floor(m.createdAt / 1000),
    owned_by: m.tenantId,
    modality: m.modality,
    versions,
    aliases: Object.fromEntries(aliases.map((a) => [a.alias, a.version])),
  };
}

export const AliasEventSchema = z
  .object({
    alias: z.string(),
    from: z.number().int().nullable().openapi({ example: 2 }),
    to: z.number().int().openapi({ example: 3 }),
    actorKeyId: z.string().nullable(),
    reason: z.string().nullable(),
    createdAt: Timestamp,
  })
  .openapi("AliasEvent");
