import { createRoute, z } from "@hono/zod-openapi";
import { badRequest, errorResponses } from "../lib/errors";
import { metrics } from "../lib/metrics";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { toBase64, truncateDims } from "../services/encoder/embed";
import { embedderFor } from "../services/encoder/embedders";
import { MAX_INPUTS, MAX_REQUEST_TOKENS } from "../services/encoder/inputs";
import { checkDimensions, requestPrecision } from "../services/encoder/options";
import { getEncoder } from "../services/encoder/sessions";
import type { Manifest } from "../services/manifest";
import { formatRef } from "../services/refs";
import { resolveVersion } from "../services/registry";

const Input = z
  .union(
    // The bounds below are what the handler enforces (its own messages); they are spec-only here.
    [
      z.string().openapi({ minLength: 1 }),
      z.array(z.string().openapi({ minLength: 1 })).openapi({ minItems: 1, maxItems: MAX_INPUTS }),
      z.array(z.number()).openapi({ minItems: 1 }),
      z.array(z.array(z.number()).openapi({ minItems: 1 })).openapi({ minItems: 1, maxItems: MAX_INPUTS }),
      z
        .array(z.array(z.array(z.number()).openapi({ minItems: 1 })).openapi({ minItems: 1 }))
        .openapi({ minItems: 1, maxItems: MAX_INPUTS }),
    ],
    {
      error:
        "must be a string or array of strings (text, or base64 images), token ids (number[] / number[][]), or time series (number[] / number[][] / number[][][])",
    },
  )
  .openapi({
    example: ["Call me Ishmael.", "The whale!"],
    description:
      "What to embed; the form follows the model's `modality` (`GET /v1/models/{ref}/info`). " +
      `At most ${MAX_INPUTS} inputs; empty strings and arrays are rejected.\n\n` +
      "- **text**: a string, an array of strings, one token-id array or an array of them. " +
      "`usage.prompt_tokens` counts tokens after truncation, special tokens included.\n" +
      "- **image**: a base64 PNG or JPEG (8/16-bit, grey/RGB/palette, alpha ignored) or a `data:image/png;base64,…` URL, " +
      "or an array of them; at most 16 MiB encoded and 16 megapixels decoded each (more is a 413). The Worker decodes, " +
      "resizes and normalizes each image exactly as the manifest's `preprocessing` says. " +
      "`usage.prompt_tokens` counts `image_size²` per image.\n" +
      "- **timeseries**: a 1-channel model takes one series as `number[]` or several as `number[][]`; a C-channel model " +
      "takes one series as `number[][]` (C arrays of equal length, channel-major) or several as `number[][][]`. Series " +
      "longer than the model's `max_length` keep their first points (`truncate: false` → 413); shorter ones are padded " +
      "and masked. `usage.prompt_tokens` counts observed points × channels.\n\n" +
      "Sending one modality's form to another modality's model is a 400 naming the model's modality.",
  });

export const EmbeddingsRequest = z
  .object({
    model: z.string().min(1).openapi({ example: "demo@latest", description: "`name`, `name@3` or `name@alias`." }),
    input: Input,
    encoding_format: z.enum(["float", "base64"]).default("float").openapi({
      description: "`base64`: each embedding as little-endian float32 bytes, base64-encoded.",
    }),
    dimensions: z.number().int().min(1).optional().openapi({
      example: 64,
      description:
        "Matryoshka truncation (then renormalised); only for models trained for it (manifest `matryoshka_dims`).",
    }),
    user: z.string().max(256).optional(),
    truncate: z.boolean().default(true).openapi({
      description:
        "selfsup extension. `true`: text longer than the model's max_tokens (series longer than max_length) is cut; `false`: 413 naming the input.",
    }),
    precision: z.enum(["auto", "int8", "fp32"]).default("auto").openapi({
      description:
        "selfsup extension. `auto` runs int8 weights when the version has them (or what the deployment's EMBED_PRECISION says).",
    }),
  })
  .openapi("EmbeddingsRequest");

const EmbeddingsResponse = z
  .object({
    object: z.literal("list"),
    data: z.array(
      z.object({
        object: z.literal("embedding"),
        index: z.number().int(),
        embedding: z.union([z.array(z.number()), z.string()]).openapi({ example: [0.0123, -0.0456] }),
      }),
    ),
    model: z.string().openapi({ example: "demo@3" }),
    usage: z.object({
      prompt_tokens: z.number().int().openapi({ example: 12 }),
      total_tokens: z.number().int().openapi({ example: 12 }),
    }),
  })
  .openapi("EmbeddingsResponse");

const route = createRoute({
  method: "post",
  path: "/v1/embeddings",
  tags: ["embeddings"],
  summary: "Create embeddings (OpenAI-compatible)",
  description:
    "OpenAI's embeddings contract: the official SDKs work unchanged with `baseURL` pointed at `/v1`. " +
    `At most ${MAX_INPUTS} inputs and ${MAX_REQUEST_TOKENS} tokens (after truncation) per request; more is a 413. ` +
    "Runs onnxruntime-web in the Worker, int8 weights by default; inputs are split into micro-batches under a memory budget " +
    "(tokens, pixels or points, by modality), and an input's embedding does not depend on what else is in the request. " +
    "Image and time-series models take the input forms described under `input`; `usage` counts their model-input units.",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: { body: jsonBody(EmbeddingsRequest) },
  responses: {
    200: jsonResponse(EmbeddingsResponse, "One embedding per input, in input order."),
    ...errorResponses,
  },
});

export const registerV1EmbeddingsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const body = c.req.valid("json");
    if (Array.isArray(body.input) && body.input.length === 0) {
      throw badRequest(`input: must not be empty; send 1 to ${MAX_INPUTS} inputs.`, [
        { path: "input", message: "must not be empty" },
      ]);
    }
    const { model, version } = await resolveVersion(db, c.get("auth").tenantId, body.model);
    const ref = formatRef(model.name, version.version);
    const manifest = version.manifest as Manifest;
    // Input forms are checked before the model is loaded, so a wrong request costs no ORT session.
    const embedder = embedderFor(manifest.modality);
    const items = embedder.parse(manifest, body.input, "input");
    checkDimensions(manifest, ref, body.dimensions);
    const { settings } = c.var.services;
    const precision = requestPrecision(manifest, ref, body.precision, settings.precision);
    const enc = await getEncoder(storage, { id: version.id, manifest, files: version.files }, precision);
    const { vectors, units: promptTokens } = await embedder.embed(enc, items, {
      truncate: body.truncate,
      batching: settings.batching,
    });
    metrics.tokens.inc({ precision }, promptTokens);
    metrics.inputs.inc({ precision }, vectors.length);
    const data = vectors.map((v, index) => {
      const vec = body.dimensions && body.dimensions < v.length ? truncateDims(v, body.dimensions) : v;
      return {
        object: "embedding" as const,
        index,
        embedding: body.encoding_format === "base64" ? toBase64(vec) : Array.from(vec),
      };
    });
    return c.json(
      {
        object: "list" as const,
        data,
        model: ref,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      },
      200,
    );
  });
