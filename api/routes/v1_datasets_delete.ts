import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, inArray, or } from "drizzle-orm";
import { datasets, trainingJobs } from "../../db/schema";
import { conflict, errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findDataset, stagingKey } from "../services/datasets";
import { DatasetSchema, datasetView } from "./views/dataset_views";

const route = createRoute({
  method: "delete",
  path: "/v1/datasets/{id}",
  tags: ["datasets"],
  summary: "Delete a dataset (aborts an unfinished upload); refused while a job uses it",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(DatasetSchema, "The deleted dataset."), ...errorResponses },
});

export const registerV1DatasetsDelete = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const d = await findDataset(db, c.get("auth").tenantId, c.req.valid("param").id);
    const active = await db.query.trainingJobs.findFirst({
      where: and(
        or(eq(trainingJobs.datasetId, d.id), eq(trainingJobs.evalDatasetId, d.id)),
        inArray(trainingJobs.status, ["queued", "running"]),
      ),
    });
    if (active)
      throw conflict(`Job ${active.id} (${active.status}) uses dataset ${d.id}; cancel it or wait for it to finish.`);
    if (d.uploadId)
      await storage
        .resumeMultipart(stagingKey(d.objectKey), d.uploadId)
        .abort()
        .catch(() => {});
    // A presigned PUT still valid after this lands on the staging key only: garbage nothing reads,
    // as every reader finds the dataset through its (now deleted) row and reads the final key.
    await storage.delete([d.objectKey, stagingKey(d.objectKey)]);
    await db.update(datasets).set({ deletedAt: Date.now(), uploadId: null }).where(eq(datasets.id, d.id));
    return c.json(datasetView(d), 200);
  });
