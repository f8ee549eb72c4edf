import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { bodyLimit } from "hono/body-limit";
import { models, modelVersions } from "../../db/schema";
import { newId } from "../lib/crypto";
import { ApiError, badRequest, conflict, errorResponses, unprocessable, zodFieldErrors } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { type ArtifactFile, checkArtifacts, versionFiles } from "../services/artifacts";
import { ManifestSchema } from "../services/manifest";
import { forgetAliases, registerVersionStatements } from "../services/registry";
import { VersionSchema, versionView } from "./views/model_views";

// Workers accept request bodies up to 100 MB; bigger artifacts come through the trainer's signed uploads.
export const IMPORT_MAX_BYTES = 100 * 1024 * 1024;

const route = createRoute({
  method: "post",
  path: "/v1/models/{name}/versions",
  tags: ["models"],
  summary: "Import an encoder: ONNX file(s), tokenizer.json and manifest.json as multipart/form-data",
  description:
    "Send `manifest` (the manifest JSON) and every file it lists as repeated `files` parts, e.g. " +
    "`curl -F manifest=@manifest.json -F files=@model.onnx -F files=@model.onnx.data -F files=@tokenizer.json`. " +
    "Before anything is stored: sizes and SHA-256, the ONNX structure (inputs by name, output dims, external-data " +
    "extents), tokenizer.json truncation equal to `max_tokens`, and every variant that fits the Worker's 128 MB " +
    "isolate loaded and run once on a probe input that must return `dims` finite values (a variant too big to load, " +
    "e.g. all-MiniLM-L6-v2 fp32, gets the structural check and its int8 variant runs); each problem is a 422 naming " +
    "the file or field. The new version becomes `latest`. " +
    `At most ${IMPORT_MAX_BYTES / 1024 / 1024} MiB per request; larger encoders go through \`POST /v1/models/{name}/imports\`.`,
  security: bearer,
  middleware: [
    requireScope("train"),
    bodyLimit({
      maxSize: IMPORT_MAX_BYTES,
      onError: () => {
        throw new ApiError(
          413,
          "too_large",
          `The upload exceeds ${IMPORT_MAX_BYTES / 1024 / 1024} MiB; split weights into external data or register through a training job.`,
        );
      },
    }),
  ] as const,
  request: {
    params: z.object({ name: ModelName }),
    body: {
      required: true,
      content: {
        "multipart/form-data": {
          schema: z
            .object({
              manifest: z.any().openapi({ type: "string", description: "manifest.json (text or file)" }),
              files: z.any().openapi({ type: "array", items: { type: "string", format: "binary" } }),
            })
            // z.any() reads as optional, but the route refuses a form without either.
            .openapi({ required: ["manifest", "files"] }),
        },
      },
    },
  },
  responses: {
    201: jsonResponse(VersionSchema, "The registered version (now `latest`)."),
    ...errorResponses,
  },
});

async function readManifest(part: File | string | null) {
  if (part === null) throw badRequest("manifest: missing; send the manifest JSON as the `manifest` form field.");
  const text = typeof part === "string" ? part : await part.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw badRequest("manifest: not valid JSON.", [{ path: "manifest", message: "not valid JSON" }]);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const errors = zodFieldErrors(parsed.error.issues, "manifest");
    throw badRequest(`${errors[0]?.path}: ${errors[0]?.message}`, errors);
  }
  return parsed.data;
}

export const registerV1ModelsVersionsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const contentType = c.req.header("content-type") ?? "";
    if (!contentType.startsWith("multipart/form-data")) {
      throw new ApiError(415, "unsupported_media_type", "Send multipart/form-data with `manifest` and `files` parts.");
    }
    const { db, storage } = c.get("services");
    const auth = c.get("auth");
    const { name } = c.req.valid("param");
    const form = await c.req.formData();
    const manifest = await readManifest(form.get("manifest"));

    const files: ArtifactFile[] = [];
    for (const part of form.getAll("files")) {
      if (typeof part === "string")
        throw badRequest("files: each `files` part must be a file upload (curl -F files=@path).");
      if (files.some((f) => f.name === part.name)) throw badRequest(`files: \`${part.name}\` was sent twice.`);
      files.push({ name: part.name, bytes: new Uint8Array(await part.arrayBuffer()) });
    }
    const problems = await checkArtifacts(manifest, files);
    if (problems.length > 0) throw unprocessable(`${problems[0]?.path}: ${problems[0]?.message}`, problems);

    const existing = await db.query.models.findFirst({
      where: and(eq(models.tenantId, auth.tenantId), eq(models.name, name)),
    });
    if (existing && existing.modality !== manifest.modality) {
      throw conflict(
        `Model \`${name}\` holds ${existing.modality} encoders; this manifest is ${manifest.modality}. Use another name.`,
      );
    }

    const versionId = newId("mv");
    const prefix = `models/${auth.tenantId}/${name}/${versionId}`;
    const stored = versionFiles(prefix, manifest);
    const keys = Object.values(stored).map((f) => f.key);
    try {
      for (const f of files) {
        const meta = stored[f.name];
        if (meta) await storage.putVerified(meta.key, f.bytes, meta.sha256);
      }
      await storage.put(`${prefix}/manifest.json`, JSON.stringify(manifest), "application/json");
      await db.batch(
        registerVersionStatements(db, {
          tenantId: auth.tenantId,
          modelName: name,
          modality: manifest.modality,
          versionId,
          dims: manifest.dims,
          manifest,
          files: stored,
          source: "import",
          actorKeyId: auth.keyId,
        }),
      );
      forgetAliases(auth.tenantId);
    } catch (e) {
      // Not registered, so the stored files are unreachable: remove them rather than leak storage.
      await storage.delete([...keys, `${prefix}/manifest.json`]).catch(() => {});
      if (String((e as { cause?: unknown }).cause ?? e).includes("UNIQUE constraint failed: model_versions")) {
        throw conflict(`Another version of \`${name}\` was registered at the same moment; send the import again.`);
      }
      throw e;
    }
    const model = await db.query.models.findFirst({
      where: and(eq(models.tenantId, auth.tenantId), eq(models.name, name)),
    });
    const version = await db.query.modelVersions.findFirst({ where: eq(modelVersions.id, versionId) });
    if (!model || !version) throw new Error(`version ${versionId} vanished after registration`);
    return c.json(versionView(model, version, ["latest"]), 201);
  });
