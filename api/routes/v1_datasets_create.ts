import { createRoute, z } from "@hono/zod-openapi";
import { datasets } from "../../db/schema";
import { newId } from "../lib/crypto";
import { errorResponses, unprocessable } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { FORMATS, MAX_DATASET_BYTES, planUpload, stagingKey, uploadTarget } from "../services/datasets";
import { DatasetSchema, datasetView, UploadTargetSchema } from "./views/dataset_views";

const route = createRoute({
  method: "post",
  path: "/v1/datasets",
  tags: ["datasets"],
  summary: "Declare a dataset and get where to upload it (straight to R2)",
  description:
    "Small files (<= 64 MiB) get one presigned PUT; larger ones a multipart upload with one presigned URL per part " +
    "(send parts of exactly `partSize` bytes, the last may be shorter, then call /complete with each part's ETag). " +
    "Files up to 100 MB may instead be sent through `PUT /v1/datasets/{id}/content`.",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    body: jsonBody(
      z.object({
        name: z.string().min(1).max(200).openapi({ example: "moby-dick" }),
        modality: z.enum(["text", "image", "timeseries"]).openapi({ example: "text" }),
        purpose: z.enum(["pretrain", "probe"]).openapi({ example: "pretrain" }),
        format: z.string().openapi({
          example: "txt",
          description: `text: ${FORMATS.text.join(", ")}; image: ${FORMATS.image.join(", ")} (PNG/JPEG members, class = first folder; or MNIST-style IDX); timeseries: ${FORMATS.timeseries.join(", ")}. Probe sets need labels.`,
        }),
        bytes: z.number().int().min(1).max(MAX_DATASET_BYTES).openapi({ example: 262144 }),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, "must be the file's SHA-256 as 64 lowercase hex characters")
          .openapi({ example: "9f2c...e1" }),
      }),
    ),
  },
  responses: {
    201: jsonResponse(
      DatasetSchema.extend({
        upload: UploadTargetSchema,
      }),
      "The dataset (status `uploading`) and where to send its bytes.",
    ),
    ...errorResponses,
  },
});

export const registerV1DatasetsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const allowed: readonly string[] = FORMATS[body.modality];
    if (!allowed.includes(body.format)) {
      throw unprocessable(
        `format: \`${body.format}\` is not a ${body.modality} format; use one of ${allowed.join(", ")}.`,
        [{ path: "format", message: `use one of ${allowed.join(", ")} for ${body.modality} datasets` }],
      );
    }
    // Formats that cannot carry a label are refused for probe sets before anything is uploaded.
    const unlabeled = body.modality === "image" ? body.format.startsWith("idx") : body.format.startsWith("txt");
    if (body.purpose === "probe" && unlabeled) {
      const fix =
        body.modality === "image"
          ? "upload a zip or tar holding the *idx3* images file and its *idx1* labels file, or class folders of images"
          : "upload jsonl with a label on every record";
      throw unprocessable(`format: a probe set needs labels and a bare ${body.format} file has none; ${fix}.`, [
        { path: "format", message: `cannot hold labels; ${fix}` },
      ]);
    }
    const { db, storage, presign } = c.get("services");
    const auth = c.get("auth");
    const id = newId("ds");
    const objectKey = `datasets/${auth.tenantId}/${id}/data.${body.format}`;
    // Multipart uploads are created through the R2 binding; only their UploadPart calls are presigned.
    const uploadId =
      planUpload(body.bytes).kind === "multipart"
        ? (await storage.createMultipart(stagingKey(objectKey))).uploadId
        : null;
    const upload = await uploadTarget(presign, { objectKey, bytes: body.bytes, uploadId });
    const [row] = await db
      .insert(datasets)
      .values({ id, tenantId: auth.tenantId, ...body, objectKey, uploadId, status: "uploading" })
      .returning();
    if (!row) throw new Error("insert returned no row");
    return c.json({ ...datasetView(row), upload }, 201);
  });
