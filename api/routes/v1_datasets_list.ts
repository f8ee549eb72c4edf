import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, isNull } from "drizzle-orm";
import { DATASET_STATUSES, datasets } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { DatasetSchema, datasetView } from "./views/dataset_views";

const route = createRoute({
  method: "get",
  path: "/v1/datasets",
  tags: ["datasets"],
  summary: "List datasets, newest first",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    query: z.object({
      status: z.enum(DATASET_STATUSES).optional(),
      purpose: z.enum(["pretrain", "probe"]).optional(),
    }),
  },
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(DatasetSchema) }), "Datasets."),
    ...errorResponses,
  },
});

export const registerV1DatasetsList = (app: Router) =>
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const rows = await c
      .get("services")
      .db.select()
      .from(datasets)
      .where(
        and(
          eq(datasets.tenantId, c.get("auth").tenantId),
          isNull(datasets.deletedAt),
          q.status ? eq(datasets.status, q.status) : undefined,
          q.purpose ? eq(datasets.purpose, q.purpose) : undefined,
        ),
      )
      .orderBy(desc(datasets.createdAt));
    return c.json({ object: "list" as const, data: rows.map(datasetView) }, 200);
  });
