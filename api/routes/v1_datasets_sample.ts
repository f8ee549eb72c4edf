import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { MAX_SAMPLE, sampleDataset } from "../services/dataset_sample";

const SampleSchema = z
  .object({
    object: z.literal("list"),
    dataset: z.string(),
    read: z
      .number()
      .int()
      .openapi({ description: "Records read (the first 4096 at most); the sample spreads over them." }),
    data: z.array(
      z.object({
        index: z.number().int().openapi({ description: "The record's place among those read, in file order." }),
        input: z.union([z.string(), z.array(z.number()), z.array(z.array(z.number()))]).openapi({
          description:
            "As /v1/embeddings takes it: text; a `data:image/png;base64,…` URL; a series as `number[]` (one channel) or channels × time.",
        }),
        label: z.string().nullable(),
      }),
    ),
  })
  .openapi("DatasetSample");

const route = createRoute({
  method: "get",
  path: "/v1/datasets/{id}/sample",
  tags: ["datasets"],
  summary: "A few labeled records of a ready probe set, spread evenly over the file",
  description:
    "For looking at a set and embedding a sample of it (the dashboard's evaluation map). Reads at most the first 4096 " +
    "records, within the same size limits as a probe on the set, and returns up to `n` of them evenly spaced.",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    params: z.object({ id: z.string() }),
    query: z.object({
      n: z.coerce
        .number()
        .int()
        .min(1)
        .max(MAX_SAMPLE)
        .default(200)
        .openapi({ example: 400, description: `How many records at most (1..${MAX_SAMPLE}).` }),
    }),
  },
  responses: { 200: jsonResponse(SampleSchema, "The sample."), ...errorResponses },
});

export const registerV1DatasetsSample = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const ctx = { db, bucket: storage.bucket, tenantId: c.get("auth").tenantId };
    const s = await sampleDataset(ctx, c.req.valid("param").id, c.req.valid("query").n);
    return c.json({ object: "list" as const, ...s }, 200);
  });
