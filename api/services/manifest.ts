import { z } from "@hono/zod-openapi";
import { MODALITIES } from "../../db/schema";
import { badRequest, zodFieldErrors } from "../lib/errors";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex characters (SHA-256)");
const FileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "use a plain file name: letters, digits, '.', '_' or '-'");

const Positive = z.number().positive().finite();

/** Image `preprocessing` (decision 0005): what the Worker does to a PNG/JPEG before `pixel_values`. */
export const ImagePreprocessingSchema = z
  .object({
    // 512: the trainer's largest image_size (gpu-trainer config).
    image_size: z.number().int().min(1).max(512),
    channels: z.union([z.literal(1), z.literal(3)], { error: "must be 1 (grey) or 3 (RGB)" }),
    resize: z.literal("bilinear-aa", { error: 'must be "bilinear-aa" (the only resize filter the edge implements)' }),
    fit: z.literal("stretch", { error: 'must be "stretch"' }),
    scale: Positive.default(255),
    mean: z.array(z.number().finite()).min(1),
    std: z.array(Positive).min(1),
    layout: z.literal("NCHW", { error: 'must be "NCHW"' }),
  })
  .passthrough()
  .superRefine((p, ctx) => {
    for (const key of ["mean", "std"] as const) {
      if (p[key].length !== p.channels) {
        ctx.addIssue({ code: "custom", path: [key], message: `must list ${p.channels} numbers, one per channel` });
      }
    }
  });
export type ImagePreprocessing = z.infer<typeof ImagePreprocessingSchema>;

/** Time-series `preprocessing` (decision 0005): the edge pads and masks; normalization is in the graph. */
export const SeriesPreprocessingSchema = z
  .object({
    channels: z.number().int().min(1).max(256),
    max_length: z.number().int().min(1).max(4096),
    patch_size: z.number().int().min(1).max(4096),
    normalization: z.enum(["per_series", "dataset", "none"]),
    mean: z.array(z.number().finite()).nullable().default(null),
    std: z.array(Positive).nullable().default(null),
    in_graph: z.literal(true, {
      error: "must be true: the edge feeds raw values and leaves normalization to the graph",
    }),
    pad: z.literal("end", { error: 'must be "end"' }),
    truncate: z.literal("keep_first", { error: 'must be "keep_first"' }),
  })
  .passthrough()
  .superRefine((p, ctx) => {
    if (p.max_length % p.patch_size !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["max_length"],
        message: `must be a multiple of patch_size ${p.patch_size}`,
      });
    }
    if (p.normalization === "dataset") {
      for (const key of ["mean", "std"] as const) {
        if (p[key]?.length !== p.channels) {
          ctx.addIssue({ code: "custom", path: [key], message: `dataset normalization needs ${p.channels} numbers` });
        }
      }
    }
  });
export type SeriesPreprocessing = z.infer<typeof SeriesPreprocessingSchema>;

/**
 * What the edge feeds a text graph, by input name (token ids, the attention mask, all-zero token
 * types). The manifest may list them in any order; an unknown name is refused at registration.
 */
export const TEXT_INPUTS = { input_ids: "ids", attention_mask: "mask", token_type_ids: "types" } as const;

/** The ONNX input names each modality's edge code feeds, in order. */
export const MODAL_INPUTS = { image: ["pixel_values"], timeseries: ["values", "observed"] } as const;

/**
 * A fine-tuned version's classification head (issue 18): the ONNX output holding `[batch, K]`
 * logits next to the embedding output, the K labels in logit order, and the activation that turns
 * logits into probabilities (softmax, the only one the edge implements).
 */
export const HeadSchema = z
  .object({
    output: z.string().min(1),
    labels: z
      .array(z.string().min(1, "labels are non-empty strings"))
      .min(2, "a classifier needs at least 2 labels")
      .max(10_000),
    activation: z.literal("softmax", { error: 'must be "softmax" (the only activation the edge implements)' }),
  })
  .passthrough()
  .openapi({
    description:
      "Fine-tuned versions: the ONNX output with `[batch, K]` logits, the K labels in logit order, and `softmax`. " +
      "Such a version serves /v1/classifications.",
  });
export type Head = z.infer<typeof HeadSchema>;

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
      .partialRecord(
        z.enum(["fp32", "int8", "fp16"]),
        z.object({
          model: FileName,
          data: FileName.optional(),
          kernel: FileName.optional().openapi({
            description:
              "int8 only: the same encoder as a selfsup kernel file (decision 0011), which the edge serves instead of the ONNX graph.",
          }),
        }),
      )
      .refine((v) => Object.keys(v).length > 0, "list at least one variant (fp32 or int8)"),
    files: z.record(FileName, z.object({ sha256: Sha256, bytes: z.number().int().min(0) })),
    weights: FileName.optional().openapi({
      description:
        "The file in `files` holding the encoder's PyTorch weights (safetensors); a version with it can be continued (`init_from`).",
    }),
    architecture: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({ description: "Encoder shape (kind, layers, hidden, heads, …), read by the trainer for `init_from`." }),
    head: HeadSchema.optional(),
    finetuned_from: z.string().optional().openapi({ description: "The version a fine-tuned one was trained from." }),
  })
  .passthrough()
  .superRefine((m, ctx) => {
    for (const [variant, v] of Object.entries(m.variants)) {
      for (const f of [v.model, v.data, v.kernel]) {
        if (f && !(f in m.files)) {
          ctx.addIssue({ code: "custom", path: ["variants", variant], message: `${f} is not listed in files` });
        }
      }
    }
    if (m.head) {
      const seen = new Set<string>();
      m.head.labels.forEach((label, i) => {
        if (seen.has(label)) {
          ctx.addIssue({ code: "custom", path: ["head", "labels", i], message: `\`${label}\` is listed twice` });
        }
        seen.add(label);
      });
      if (m.head.output === m.output) {
        ctx.addIssue({
          code: "custom",
          path: ["head", "output"],
          message: `is the embedding output \`${m.output}\`; the logits need their own output (e.g. "logits")`,
        });
      }
    }
    if (m.weights !== undefined && !(m.weights in m.files)) {
      ctx.addIssue({ code: "custom", path: ["weights"], message: `${m.weights} is not listed in files` });
    }
    if (m.modality === "text") {
      if (!("tokenizer.json" in m.files)) {
        ctx.addIssue({ code: "custom", path: ["files"], message: "a text encoder needs tokenizer.json in files" });
      }
      if (m.max_tokens === undefined) {
        ctx.addIssue({ code: "custom", path: ["max_tokens"], message: "required for text encoders" });
      }
      const known = Object.keys(TEXT_INPUTS);
      for (const [i, name] of m.inputs.entries()) {
        if (!known.includes(name)) {
          ctx.addIssue({
            code: "custom",
            path: ["inputs", i],
            message: `\`${name}\` is not an input the edge can feed; text graphs take ${known.join(", ")} (by name, any order)`,
          });
        }
      }
      if (!m.inputs.includes("input_ids")) {
        ctx.addIssue({ code: "custom", path: ["inputs"], message: "a text encoder needs `input_ids`" });
      }
      if (new Set(m.inputs).size !== m.inputs.length) {
        ctx.addIssue({ code: "custom", path: ["inputs"], message: "lists an input twice" });
      }
    }
    if (m.modality === "image" || m.modality === "timeseries") {
      const want: readonly string[] = MODAL_INPUTS[m.modality];
      if (m.inputs.length !== want.length || m.inputs.some((n, i) => n !== want[i])) {
        ctx.addIssue({
          code: "custom",
          path: ["inputs"],
          message: `a ${m.modality} encoder takes ${JSON.stringify(want)}; got ${JSON.stringify(m.inputs)}`,
        });
      }
      const schema = m.modality === "image" ? ImagePreprocessingSchema : SeriesPreprocessingSchema;
      const parsed = schema.safeParse(m.preprocessing);
      for (const issue of parsed.error?.issues ?? []) {
        ctx.addIssue({ code: "custom", path: ["preprocessing", ...issue.path], message: issue.message });
      }
    }
    for (const d of m.matryoshka_dims ?? []) {
      if (d > m.dims)
        ctx.addIssue({ code: "custom", path: ["matryoshka_dims"], message: `${d} exceeds dims ${m.dims}` });
    }
  })
  .openapi("Manifest");

export type Manifest = z.infer<typeof ManifestSchema>;

/** A registered image manifest's preprocessing, defaults applied (validated at registration). */
export const imagePreprocessing = (m: Manifest): ImagePreprocessing => ImagePreprocessingSchema.parse(m.preprocessing);
/** A registered time-series manifest's preprocessing, defaults applied (validated at registration). */
export const seriesPreprocessing = (m: Manifest): SeriesPreprocessing =>
  SeriesPreprocessingSchema.parse(m.preprocessing);

/** A manifest from a request body, or a 400 naming each bad field under `field`. */
export function parseManifest(json: unknown, field = "manifest"): Manifest {
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const errors = zodFieldErrors(parsed.error.issues, field);
    throw badRequest(`${errors[0]?.path}: ${errors[0]?.message}`, errors);
  }
  return parsed.data;
}
