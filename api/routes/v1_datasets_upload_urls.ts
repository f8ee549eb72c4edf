import { createRoute, z } from "@hono/zod-openapi";
import { conflict, errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findDataset, uploadTarget } from "../services/datasets";
import { UploadTargetSchema } from "./views/dataset_views";

const route = createRoute({
  method: "post",
  path: "/v1/datasets/{id}/upload-urls",
  tags: ["datasets"],
  summary: "Fresh presigned upload URLs for an unfinished upload (to resume after they expired)",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    params: z.object({ id: z.string() }),
    // Optional: no body (or no `parts`) asks for every URL again.
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z.object({
            parts: z
              .array(z.number().int().min(1).max(10_000))
              .max(10_000)
              .optional()
              .openapi({ example: [3, 4, 5], description: "Only these part numbers (default: all)." }),
          }),
        },
      },
    },
  },
  responses: {
    200: jsonResponse(UploadTargetSchema, "Where to send the (remaining) bytes."),
    ...errorResponses,
  },
});

export const registerV1DatasetsUploadUrls = (app: Router) =>
  app.openapi(route, async (c) => {
    const d = await findDataset(c.get("services").db, c.get("auth").tenantId, c.req.valid("param").id);
    if (d.status !== "uploading")
      throw conflict(`Dataset ${d.id} is ${d.status}; only an unfinished upload takes bytes.`);
    return c.json(await uploadTarget(c.get("services").presign, d, c.req.valid("json")?.parts), 200);
  });
