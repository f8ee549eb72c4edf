import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { bodyLimit } from "hono/body-limit";
import { datasets } from "../../db/schema";
import { sha256Hex } from "../lib/crypto";
import { ApiError, conflict, errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findDataset, stagingKey } from "../services/datasets";
import { DatasetSchema, datasetView } from "./views/dataset_views";

export const CONTENT_MAX_BYTES = 100 * 1000 * 1000;

const route = createRoute({
  method: "put",
  path: "/v1/datasets/{id}/content",
  tags: ["datasets"],
  summary: "Upload a small dataset's bytes through the API (<= 100 MB)",
  description:
    "Convenience for small files; larger ones use the presigned URLs from POST /v1/datasets. Call /complete afterwards.",
  security: bearer,
  middleware: [
    requireScope("train"),
    bodyLimit({
      maxSize: CONTENT_MAX_BYTES,
      onError: () => {
        throw new ApiError(
          413,
          "too_large",
          "Bodies over 100 MB cannot pass through a Worker; use the presigned upload URLs.",
        );
      },
    }),
  ] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: {
      required: true,
      content: { "application/octet-stream": { schema: z.any().openapi({ type: "string", format: "binary" }) } },
    },
  },
  responses: { 200: jsonResponse(DatasetSchema, "Stored; call /complete to check it."), ...errorResponses },
});

export const registerV1DatasetsContent = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const d = await findDataset(db, c.get("auth").tenantId, c.req.valid("param").id);
    if (d.status !== "uploading")
      throw conflict(`Dataset ${d.id} is ${d.status}; only an uploading dataset takes content.`);
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.byteLength !== d.bytes) {
      throw new ApiError(
        400,
        "size_mismatch",
        `The body is ${body.byteLength} bytes but the dataset was declared with ${d.bytes}.`,
        {
          errors: [{ path: "bytes", message: `declared ${d.bytes}, received ${body.byteLength}` }],
        },
      );
    }
    if ((await sha256Hex(body)) !== d.sha256) {
      throw new ApiError(400, "sha256_mismatch", "The body's SHA-256 differs from the one declared for this dataset.", {
        errors: [{ path: "sha256", message: "does not match the uploaded bytes" }],
      });
    }
    // Like a presigned PUT it lands on the staging key; /complete checks it and moves it.
    await storage.putVerified(stagingKey(d.objectKey), body, d.sha256);
    // Sizes above the presigned single-PUT limit were given a multipart upload; this body replaces it.
    if (d.uploadId) {
      await storage
        .resumeMultipart(stagingKey(d.objectKey), d.uploadId)
        .abort()
        .catch(() => {});
      await db.update(datasets).set({ uploadId: null, updatedAt: Date.now() }).where(eq(datasets.id, d.id));
    }
    return c.json(datasetView(d), 200);
  });
