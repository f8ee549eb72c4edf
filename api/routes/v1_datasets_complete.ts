import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { datasets } from "../../db/schema";
import { badRequest, conflict, errorResponses, unprocessable } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import type { DatasetIssue } from "../services/dataset_check";
import { restartIfStale, startCheck } from "../services/dataset_check_queue";
import { findDataset, missingParts, partCount, partRanges, stagingKey } from "../services/datasets";
import { DatasetSchema, datasetView, issuePath } from "./views/dataset_views";

/**
 * The body is optional, but clients that always send `content-type: application/json` (fetch
 * wrappers, `curl -H`) then send it empty, which the JSON validator would refuse as malformed:
 * an empty JSON body reads as `{}`.
 */
const emptyJsonIsNoBody: MiddlewareHandler = async (c, next) => {
  if (c.req.header("content-type")?.includes("json") && (await c.req.text()).trim() === "") {
    // Hono keeps promises in bodyCache (its type says values); the validator's json() reads this.
    (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve("{}");
  }
  await next();
};

const route = createRoute({
  method: "post",
  path: "/v1/datasets/{id}/complete",
  tags: ["datasets"],
  summary: "Finish an upload and start the check of the file before anything trains on it",
  description:
    "Assembles a multipart upload, compares the stored size with the declared one (a mismatch is a 422 at once), " +
    "then answers 202 with the dataset `validating` and checks it in the background (the work queue): poll " +
    "GET /v1/datasets/{id}, whose `check` shows the progress, until it is `ready` or `invalid`. Calling it again " +
    "while validating answers 202 (and restarts a check that stopped moving); `ready` answers 200, `invalid` 409. " +
    "The check compares size and SHA-256 against what was declared, gzip integrity, and every record, and computes stats. " +
    "Text: UTF-8 and the jsonl/txt format. Images: every PNG/JPEG member is decoded (zip, tar, tar.gz) or the IDX " +
    "files are checked (magic, dims, length; labels of an idx1 file); stats count images per class, sizes, " +
    "channels and formats; corrupt images are listed by member name. Time series: every value is a finite number, " +
    "one channel count throughout; stats give channels, lengths and labels. Probe sets need labels (>= 2 classes). " +
    "The dataset becomes `ready`, or `invalid` with the first problems listed in `errors`.",
  security: bearer,
  middleware: [requireScope("train"), emptyJsonIsNoBody] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z.object({
            parts: z
              .array(z.object({ partNumber: z.number().int().min(1).max(10_000), etag: z.string().min(1) }))
              .optional()
              .openapi({ description: "For multipart uploads: every part's number and the ETag its PUT returned." }),
          }),
        },
      },
    },
  },
  responses: {
    200: jsonResponse(DatasetSchema, "The dataset was already checked and is `ready`."),
    202: jsonResponse(
      DatasetSchema,
      "The check runs in the background: the dataset is `validating`; poll GET /v1/datasets/{id}.",
    ),
    ...errorResponses,
  },
});

export const registerV1DatasetsComplete = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage, work } = c.get("services");
    const bucket = storage.bucket;
    const d = await findDataset(db, c.get("auth").tenantId, c.req.valid("param").id);
    if (d.status === "ready") return c.json(datasetView(d), 200);
    if (d.status === "invalid") throw conflict(`Dataset ${d.id} is invalid; upload it again as a new dataset.`);
    if (d.status === "validating") {
      // Already being checked: one message is enough, unless the check looks dead.
      await restartIfStale(db, work, d);
      return c.json(datasetView(d), 202);
    }
    const parts = (c.req.header("content-type")?.includes("json") ? c.req.valid("json").parts : undefined) ?? undefined;
    const staged = stagingKey(d.objectKey);

    // A multipart upload is assembled once; a retried /complete finds the object already there.
    if (d.uploadId && !(await bucket.head(staged))) {
      if (!parts || parts.length === 0) {
        throw badRequest("parts: this is a multipart upload; send every part's partNumber and ETag.", [
          { path: "parts", message: "required for multipart uploads" },
        ]);
      }
      // R2 would assemble whatever parts it gets into a shorter object, which fails the size check
      // for good; a missing part is the caller's to send, so the upload stays retryable.
      const missing = missingParts(
        d.bytes,
        parts.map((p) => p.partNumber),
      );
      if (missing.length > 0) {
        const list = `part${missing.length > 1 ? "s" : ""} ${partRanges(missing)}`;
        throw badRequest(
          `parts: ${list} of ${partCount(d.bytes)} missing; upload them (POST /v1/datasets/${d.id}/upload-urls gives fresh URLs) and send every part's partNumber and ETag.`,
          [{ path: "parts", message: `missing ${list}` }],
        );
      }
      try {
        await bucket.resumeMultipartUpload(staged, d.uploadId).complete(
          // S3 answers UploadPart with a quoted ETag; the R2 binding wants the bare value.
          [...parts]
            .sort((a, b) => a.partNumber - b.partNumber)
            .map((p) => ({ partNumber: p.partNumber, etag: p.etag.replace(/^W\//, "").replace(/^"|"$/g, "") })),
        );
      } catch {
        throw badRequest("parts: R2 could not assemble the upload; check that every part was sent and its ETag.", [
          { path: "parts", message: "a part is missing or an ETag does not match" },
        ]);
      }
    }
    const head = await bucket.head(staged);
    if (!head)
      throw conflict(`Nothing has been uploaded for dataset ${d.id} yet; PUT the file to the upload URL first.`);
    // Everything below reads and copies exactly this version; a later PUT to the staging key cannot slip in.
    const version = { key: staged, etag: head.etag, size: head.size };

    // The one verdict that needs no read: it is given here, synchronously.
    const fail = async (errors: DatasetIssue[]) => {
      await db
        .update(datasets)
        .set({
          status: "invalid",
          errors,
          stats: null,
          uploadId: null,
          updatedAt: Date.now(),
          completedAt: Date.now(),
        })
        .where(eq(datasets.id, d.id));
      await bucket.delete(staged);
      const first = errors[0];
      const where = first ? issuePath(first) : "file";
      throw unprocessable(
        `Dataset ${d.id} is invalid: ${where === "file" ? "" : `${where}: `}${first?.message}`,
        errors.map((e) => ({ path: issuePath(e), message: e.message })),
      );
    };
    if (head.size !== d.bytes)
      await fail([{ message: `the stored object is ${head.size} bytes, ${d.bytes} were declared` }]);

    const started = await startCheck(db, work, d, version);
    // Another request claimed it between our read and our claim: answer what it started.
    const row = started ?? (await findDataset(db, d.tenantId, d.id));
    if (row.status === "ready") return c.json(datasetView(row), 200);
    if (row.status === "invalid") throw conflict(`Dataset ${d.id} is invalid; upload it again as a new dataset.`);
    return c.json(datasetView(row), 202);
  });
