import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { toBase64, truncateDims } from "../services/encoder/embed";
import { encodeRequest, timingHeaders } from "../services/encoder/encode";
import { MAX_INPUTS, MAX_REQUEST_TOKENS } from "../services/encoder/inputs";
import { checkDimensions } from "../services/encoder/options";
import { EncoderInput } from "./views/encoder_inputs";

export const EmbeddingsRequest = z
  .object({
    model: z.string().min(1).openapi({ example: "demo@latest", description: "`name`, `name@3` or `name@alias`." }),
    input: EncoderInput,
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
    "Image and time-series models take the input forms described under `input`; `usage` counts their model-input units. " +
    "Answers carry `x-compute-time`, `x-queue-time` and `x-inference-time` (ms). When this isolate's encoder line is full " +
    "(EMBED_MAX_QUEUE) the answer is a 503 `server_overloaded`, when the tenant is over its token rate " +
    "(EMBED_TENANT_TOKENS_PER_MINUTE) a 429 `rate_limit_exceeded`, both with `Retry-After` (seconds), which the OpenAI SDKs honour.",
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
    const body = c.req.valid("json");
    const { ref, vectors, units, timings } = await encodeRequest(
      c.get("services"),
      c.get("auth").tenantId,
      body,
      "embedding",
      (manifest, ref) => checkDimensions(manifest, ref, body.dimensions),
    );
    const data = vectors.map((v, index) => {
      const vec = body.dimensions && body.dimensions < v.length ? truncateDims(v, body.dimensions) : v;
      return {
        object: "embedding" as const,
        index,
        embedding: body.encoding_format === "base64" ? toBase64(vec) : Array.from(vec),
      };
    });
    for (const [name, value] of Object.entries(timingHeaders(timings))) c.header(name, value);
    return c.json(
      { object: "list" as const, data, model: ref, usage: { prompt_tokens: units, total_tokens: units } },
      200,
    );
  });
