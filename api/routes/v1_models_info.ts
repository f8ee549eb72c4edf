import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { WASM_PEAK_TARGET_BYTES } from "../services/encoder/batching";
import { MAX_INPUTS, MAX_REQUEST_TOKENS } from "../services/encoder/inputs";
import { budgetFor, choosePrecision, variantBytes } from "../services/encoder/variants";
import type { Manifest } from "../services/manifest";
import { formatRef } from "../services/refs";
import { resolveVersion } from "../services/registry";
import { HeadView, headOf, lineageOf } from "./views/model_views";

const route = createRoute({
  method: "get",
  path: "/v1/models/{ref}/info",
  tags: ["embeddings"],
  summary:
    "What /v1/embeddings will do with a model: modality, preprocessing, dims, limits, precision, micro-batch budget, " +
    "and for a fine-tuned version the labels /v1/classifications answers with",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: {
    params: z.object({
      ref: z
        .string()
        .min(1)
        .max(100)
        .openapi({ example: "demo@latest", description: "`name`, `name@3` or `name@alias`" }),
    }),
  },
  responses: {
    200: jsonResponse(
      z
        .object({
          object: z.literal("model.info"),
          model: z.string().openapi({ example: "demo@3" }),
          modality: z.enum(["text", "image", "timeseries"]),
          dims: z.number().int().openapi({ example: 128 }),
          matryoshka_dims: z.array(z.number().int()).openapi({ example: [32, 64] }),
          max_tokens: z.number().int().nullable().openapi({ example: 128 }),
          pooling: z.string().openapi({ example: "mean" }),
          normalize: z.boolean(),
          precisions: z.array(z.string()).openapi({ example: ["fp32", "int8"] }),
          default_precision: z.string().openapi({ example: "int8" }),
          variants: z.record(
            z.string(),
            z.object({ bytes: z.number().int(), microbatch_token_budget: z.number().int() }),
          ),
          microbatch_token_budget: z.number().int().openapi({
            example: 4096,
            description:
              "What one ORT run may hold at the default precision, in `microbatch_unit`: padded tokens (rows × width) for text, padded points (rows × length) for time series, pixels (rows × image_size²) for images",
          }),
          microbatch_unit: z.enum(["tokens", "points", "pixels"]),
          preprocessing: z.record(z.string(), z.unknown()).openapi({
            example: {
              image_size: 32,
              channels: 1,
              resize: "bilinear-aa",
              fit: "stretch",
              scale: 255,
              mean: [0.28],
              std: [0.35],
              layout: "NCHW",
            },
            description:
              "The manifest's preprocessing (decision 0005): for images what the Worker does to each PNG/JPEG, for series max_length, patch_size and normalization",
          }),
          input_unit: z.enum(["token", "pixel", "point"]).openapi({
            description:
              "What `usage.prompt_tokens` counts: tokens; image_size² pixels per image; observed points × channels per series",
          }),
          wasm_peak_target_bytes: z.number().int(),
          max_inputs: z.number().int(),
          max_request_tokens: z.number().int(),
          finetuned_from: z.string().nullable().openapi({
            example: "demo@1",
            description: "The version this one was fine-tuned from; null when it was not fine-tuned.",
          }),
          head: HeadView.nullable().openapi({
            description:
              "A fine-tuned version's head: the labels /v1/classifications answers with (null: embeddings only).",
          }),
        })
        .openapi("ModelInfo"),
      "Serving facts for the resolved version.",
    ),
    ...errorResponses,
  },
});

const UNITS = {
  text: { batch: "tokens", usage: "token" },
  image: { batch: "pixels", usage: "pixel" },
  timeseries: { batch: "points", usage: "point" },
} as const;

export const registerV1ModelsInfo = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const { ref } = c.req.valid("param");
    const { model, version } = await resolveVersion(db, c.get("auth").tenantId, ref);
    const m = version.manifest as Manifest;
    const preferred = c.var.services.settings.precision;
    const precision = choosePrecision(m, preferred !== "auto" && preferred in m.variants ? preferred : "auto");
    const precisions = Object.keys(m.variants) as ("fp32" | "int8")[];
    const override = c.var.services.settings.batching.tokens;
    return c.json(
      {
        object: "model.info" as const,
        model: formatRef(model.name, version.version),
        modality: m.modality,
        dims: m.dims,
        matryoshka_dims: m.matryoshka_dims ?? [],
        max_tokens: m.max_tokens ?? null,
        pooling: m.pooling,
        normalize: m.normalize,
        precisions,
        default_precision: precision,
        variants: Object.fromEntries(
          precisions.map((p) => [p, { bytes: variantBytes(m, p), microbatch_token_budget: budgetFor(m, p, override) }]),
        ),
        microbatch_token_budget: budgetFor(m, precision, override),
        microbatch_unit: UNITS[m.modality].batch,
        preprocessing: m.preprocessing,
        input_unit: UNITS[m.modality].usage,
        wasm_peak_target_bytes: WASM_PEAK_TARGET_BYTES,
        max_inputs: MAX_INPUTS,
        max_request_tokens: MAX_REQUEST_TOKENS,
        finetuned_from: lineageOf(version.manifest, "finetuned_from"),
        head: headOf(version.manifest),
      },
      200,
    );
  });
