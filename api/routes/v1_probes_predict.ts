import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { unionAwareHook } from "../lib/union_errors";
import { requireScope } from "../middleware/auth";
import { tooLarge } from "../services/encoder/items";
import { predictProbe } from "../services/probe_runs";
import { findProbe, parsePredictInputs } from "../services/probes";
import { formatRef } from "../services/refs";
import { PredictInputSchema } from "./views/probe_views";

/** Inputs per predict call, the same cap as /v1/embeddings. */
export const MAX_PREDICT_INPUTS = 2048;

const route = createRoute({
  method: "post",
  path: "/v1/probes/{id}/predict",
  tags: ["probes"],
  summary: "Label new inputs with a stored probe",
  description: `Embeds each input with the probe's model version (cached) and returns the most probable label and every class probability. Inputs take the /v1/embeddings forms of the model's modality (text, base64 images, number-array series). At most ${MAX_PREDICT_INPUTS} inputs (413 beyond).`,
  security: bearer,
  middleware: [requireScope("probe")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(z.object({ input: PredictInputSchema })),
  },
  responses: {
    200: jsonResponse(
      z.object({
        object: z.literal("list"),
        probe: z.string(),
        model: z.string().openapi({ example: "demo@3" }),
        data: z.array(
          z.object({
            index: z.number().int(),
            label: z.string().openapi({ example: "food" }),
            probabilities: z.record(z.string(), z.number()).openapi({ example: { food: 0.81, law: 0.19 } }),
          }),
        ),
      }),
      "One prediction per input, in input order.",
    ),
    ...errorResponses,
  },
});

export const registerV1ProbesPredict = (app: Router) =>
  app.openapi(
    route,
    async (c) => {
      const { db, storage } = c.get("services");
      const raw = c.req.valid("json").input;
      const tooMany = (n: number) =>
        tooLarge(`input: at most ${MAX_PREDICT_INPUTS} inputs per call; got ${n}. Split the request.`, "input");
      // Early out before any lookup, except for number[]: that is one univariate series, whose
      // length is points, not inputs. The count is checked again once the inputs are parsed.
      if (Array.isArray(raw) && raw.length > MAX_PREDICT_INPUTS && !raw.every((x) => typeof x === "number")) {
        throw tooMany(raw.length);
      }
      const row = await findProbe(db, c.get("auth").tenantId, c.req.valid("param").id);
      const ref = formatRef(row.modelName, row.version);
      const input = parsePredictInputs(row.version_row, ref, raw);
      if (input.length > MAX_PREDICT_INPUTS) throw tooMany(input.length);
      const { labels, P } = await predictProbe({ storage }, row, input);
      const K = labels.length;
      const data = input.map((_, i) => {
        let best = 0;
        const probabilities: Record<string, number> = {};
        for (let k = 0; k < K; k++) {
          probabilities[labels[k] as string] = P[i * K + k] as number;
          if ((P[i * K + k] as number) > (P[i * K + best] as number)) best = k;
        }
        return { index: i, label: labels[best] as string, probabilities };
      });
      return c.json({ object: "list" as const, probe: row.probe.id, model: ref, data }, 200);
    },
    unionAwareHook,
  );
