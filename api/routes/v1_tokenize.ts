import { createRoute, z } from "@hono/zod-openapi";
import { badRequest, errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { checkInputShape, MAX_INPUTS } from "../services/encoder/inputs";
import { getEncoder } from "../services/encoder/sessions";
import { choosePrecision } from "../services/encoder/variants";
import type { Manifest } from "../services/manifest";
import { formatRef } from "../services/refs";
import { resolveVersion } from "../services/registry";

const Token = z
  .object({
    id: z.number().int().openapi({ example: 874 }),
    text: z.string().openapi({ example: "call" }),
    special: z.boolean(),
    start: z.number().int().openapi({ example: 0, description: "UTF-16 offset into the input; 0 for special tokens" }),
    stop: z.number().int().openapi({ example: 4, description: "End offset (exclusive); -1 when it cannot be located" }),
  })
  .openapi("Token");

// Empty texts are refused by the handler (with its own message); `minLength` says so in the spec only.
const NonEmptyText = z.string().openapi({ minLength: 1 });
const TextInputs = z.union(
  [NonEmptyText, z.array(NonEmptyText).min(1, { error: "must not be empty" }).max(MAX_INPUTS)],
  { error: "must be a string or an array of strings" },
);

const route = createRoute({
  method: "post",
  path: "/v1/tokenize",
  tags: ["embeddings"],
  summary: "Tokenize text the way /v1/embeddings does (TEI's route); text models only",
  description:
    "Returns, per input, the token ids the model sees (special tokens added, truncated to max_tokens unless `truncate` is false), " +
    "the token strings and their character offsets into the input. The texts go in `input` (as in /v1/embeddings) or " +
    "`inputs` (TEI's name); send exactly one of them.",
  security: bearer,
  middleware: [requireScope("embed")] as const,
  request: {
    body: jsonBody(
      z
        .object({
          model: z.string().min(1).openapi({ example: "demo" }),
          input: TextInputs.optional().openapi({
            example: "Call me Ishmael.",
            description:
              "The text(s) to tokenize, named as in /v1/embeddings. Send exactly one of `input` and `inputs`.",
          }),
          inputs: TextInputs.optional().openapi({
            description: "The same as `input` (TEI's name for it). Send exactly one of `input` and `inputs`.",
          }),
          truncate: z.boolean().default(true),
        })
        // Exactly one of the two (the handler's check), said in the spec.
        .openapi({ oneOf: [{ required: ["input"] }, { required: ["inputs"] }] }),
    ),
  },
  responses: {
    200: jsonResponse(
      z.object({
        object: z.literal("list"),
        model: z.string().openapi({ example: "demo@3" }),
        data: z.array(
          z.object({
            index: z.number().int(),
            ids: z.array(z.number().int()),
            tokens: z.array(z.string()),
            offsets: z.array(z.tuple([z.number().int(), z.number().int()])),
            details: z.array(Token),
            truncated: z.boolean(),
          }),
        ),
      }),
      "One entry per input.",
    ),
    ...errorResponses,
  },
});

export const registerV1Tokenize = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const body = c.req.valid("json");
    if ((body.input === undefined) === (body.inputs === undefined)) {
      const both = body.input !== undefined;
      throw badRequest(
        `${both ? "input, inputs: send only one of them" : "input: required"} (\`input\` as in /v1/embeddings, or its alias \`inputs\`).`,
        [{ path: both ? "inputs" : "input", message: both ? "send input or inputs, not both" : "required" }],
      );
    }
    const field = body.input !== undefined ? "input" : "inputs";
    const given = (body.input ?? body.inputs) as string | string[];
    const texts = typeof given === "string" ? [given] : given;
    // Also refuses more than MAX_INPUTS texts, naming `field`.
    checkInputShape(given, field);
    const { model, version } = await resolveVersion(db, c.get("auth").tenantId, body.model);
    const manifest = version.manifest as Manifest;
    const ref = formatRef(model.name, version.version);
    if (manifest.modality !== "text") {
      // Checked before loading the model: image and series encoders have no tokenizer to load.
      throw badRequest(
        `model: ${ref} is a${manifest.modality === "image" ? "n image" : " timeseries"} encoder; /v1/tokenize is for text models. Send its inputs to /v1/embeddings as they are.`,
        [{ path: "model", message: `a ${manifest.modality} model has no tokenizer` }],
      );
    }
    // Every variant has the same tokenizer; this loads the session /v1/embeddings would use.
    const precision = choosePrecision(manifest, c.var.services.settings.precision);
    const enc = await getEncoder(storage, { id: version.id, manifest, files: version.files }, precision);
    const tokenizer = enc.tokenizer;
    if (!tokenizer) throw badRequest(`model: ${ref} has no tokenizer.json; it takes token ids only.`);
    const data = texts.map((text, index) => {
      const e = tokenizer.encode(text, body.truncate);
      const details = tokenizer.details(text, e.ids);
      return {
        index,
        ids: e.ids,
        tokens: details.map((d) => d?.token ?? ""),
        offsets: details.map((d) => [d?.start ?? -1, d?.end ?? -1] as [number, number]),
        details: details.map((d, k) => ({
          id: e.ids[k] as number,
          text: d?.token ?? "",
          special: d?.special ?? false,
          start: d?.start ?? -1,
          stop: d?.end ?? -1,
        })),
        truncated: e.truncated && body.truncate,
      };
    });
    return c.json({ object: "list" as const, model: ref, data }, 200);
  });
