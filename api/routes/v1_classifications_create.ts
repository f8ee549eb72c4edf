import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { DEFAULT_TOP_K, rank, requireHead } from "../services/encoder/classify";
import { encodeRequest, timingHeaders } from "../services/encoder/encode";
import { MAX_INPUTS } from "../services/encoder/inputs";
import { EncoderInput } from "./views/encoder_inputs";

const ClassificationsRequest = z
  .object({
    model: z.string().min(1).openapi({
      example: "demo-cls@latest",
      description: "A fine-tuned version (manifest `head`): `name`, `name@3` or `name@alias`.",
    }),
    input: EncoderInput,
    top_k: z.number().int().min(1).max(10_000).default(DEFAULT_TOP_K).openapi({
      description: "Labels listed in each answer's `top`, most probable first; capped at the label count.",
    }),
    truncate: z.boolean().default(true).openapi({
      description:
        "`true`: text longer than the model's max_tokens (series longer than max_length) is cut; `false`: 413 naming the input.",
    }),
    precision: z.enum(["auto", "int8", "fp32"]).default("auto").openapi({
      description:
        "`auto` runs int8 weights when the version has them (or what the deployment's EMBED_PRECISION says).",
    }),
  })
  .openapi("ClassificationsRequest");

const Scored = z.object({ label: z.string(), score: z.number() });

const ClassificationsResponse = z
  .object({
    object: z.literal("list"),
    model: z.string().openapi({ example: "demo-cls@1" }),
    data: z.array(
      z.object({
        object: z.literal("classification"),
        index: z.number().int(),
        label: z.string().openapi({ example: "animal", description: "The most probable label." }),
        score: z.number().openapi({ example: 0.91, description: "Its probability (softmax of the head's logits)." }),
        top: z.array(Scored).openapi({ description: "The `top_k` most probable labels, highest first." }),
      }),
    ),
    usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
  })
  .openapi("ClassificationsResponse");

const route = createRoute({
  method: "post",
  path: "/v1/classifications",
  tags: ["classifications"],
  summary: "Classify inputs with a fine-tuned version: labels with probabilities",
  description:
    "The same input forms, limits, micro-batching and precision choice as `/v1/embeddings` (text strings or token " +
    `ids, base64 images, series; at most ${MAX_INPUTS} inputs), run in the Worker through the version's graph, ` +
    "reading its head output (`manifest.head.output`) instead of the embedding; probabilities are the softmax of " +
    "the logits. A version without a head (not fine-tuned) is a 422 naming `model`.",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: { body: jsonBody(ClassificationsRequest) },
  responses: {
    200: jsonResponse(ClassificationsResponse, "One classification per input, in input order."),
    ...errorResponses,
  },
});

export const registerV1ClassificationsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const { ref, manifest, vectors, units, timings } = await encodeRequest(
      c.get("services"),
      c.get("auth").tenantId,
      body,
      "logits",
      requireHead,
    );
    const head = requireHead(manifest, ref);
    const data = vectors.map((logits, index) => rank(logits, head, index, body.top_k));
    for (const [name, value] of Object.entries(timingHeaders(timings))) c.header(name, value);
    return c.json(
      { object: "list" as const, model: ref, data, usage: { prompt_tokens: units, total_tokens: units } },
      200,
    );
  });
