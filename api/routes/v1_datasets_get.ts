import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findDataset } from "../services/datasets";
import { DatasetSchema, datasetView } from "./views/dataset_views";

const route = createRoute({
  method: "get",
  path: "/v1/datasets/{id}",
  tags: ["datasets"],
  summary: "One dataset with its status, stats and errors",
  description:
    "Poll this after POST /v1/datasets/{id}/complete: while the background check runs the dataset is " +
    "`validating` and `check` gives `bytes_done` of `bytes_total`; it ends `ready` (with stats) or `invalid` " +
    "(with `errors`). A dataset back at `uploading` with `errors` had its check stopped (the upload was replaced, " +
    "or the check failed repeatedly): call /complete again.",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(DatasetSchema, "The dataset."), ...errorResponses },
});

export const registerV1DatasetsGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const d = await findDataset(c.get("services").db, c.get("auth").tenantId, c.req.valid("param").id);
    return c.json(datasetView(d), 200);
  });
