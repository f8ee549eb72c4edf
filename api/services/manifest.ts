import { z } from "@hono/zod-openapi";
import { MODALITIES } from "../../db/schema";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex characters (SHA-256)");
const FileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "use a plain file name: letters, digits, '.', '_' or '-'");

/**
 * The artifact manifest the trainer's exporter writes (`selfsup.encoder/v1`). Unknown top-level keys
 * pass through (config, metrics, corpus…): the registry keeps the document whole.
 */
export const ManifestSchema = z
  .object({
    format: z.literal("selfsup.encoder/v1"),
    modality: z.enum(MODALITIES),
    dims: z.number().int().min(1).max(8192),
    pooling: z.enum(["mean", "cls", "none"]).default("mean"),
    normalize: z.boolean(),
    max_tokens: z.number().int().min(1).max(32768).optional(),
    inputs: z.array(z.string().min(1)).min(1),
    output: z.string().min(1),
    matryoshka_dims: z.array(z.number().int().min(1)).optional(),
    preprocessing: z.record(z.string(), z.unknown()).default({}),
    variants: z
      .partialRecord(z.enum(["fp32", "int8", "fp16"]), z.object({ model: FileName, data: FileName.optional() }))
      .refine((v) => Object.keys(v).length > 0, "list at least one variant (fp32 or int8)"),
    files: z.record(FileName, z.object({ sha256: Sha256, bytes: z.number().int().min(0) })),
  })
  .passthrough()
  .superRefine((m, ctx) => {
    for (const [variant, v] of Object.entries(m.variants)) {
      for (const f of [v.model, v.data]) {
        if (f && !(f in m.files)) {
          ctx.addIssue({ code: "custom", path: ["variants", variant], message: `${f} is not listed in files` });
        }
      }
    }
    if (m.modality === "text") {
      if (!("tokenizer.json" in m.files)) {
        ctx.addIssue({ code: "custom", path: ["files"], message: "a text encoder needs tokenizer.json in files" });
      }
      if (m.max_tokens === undefined) {
        ctx.addIssue({ code: "custom", path: ["max_tokens"], message: "required for text encoders" });
      }
    }
    for (const d of m.matryoshka_dims ?? []) {
      if (d > m.dims)
        ctx.addIssue({ code: "custom", path: ["matryoshka_dims"], message: `${d} exceeds dims ${m.dims}` });
    }
  })
  .openapi("Manifest");

export type Manifest = z.infer<typeof ManifestSchema>;
