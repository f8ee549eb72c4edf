import { createRoute, z } from "@hono/zod-openapi";
import { modelImports } from "../../db/schema";
import { newId } from "../lib/crypto";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { URL_TTL_SECONDS } from "../lib/s3";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { parseManifest } from "../services/manifest";
import { checkModelModality } from "../services/registry";

const Put = z.object({ method: z.literal("PUT"), url: z.string(), expiresAt: z.string() });

export const ImportSchema = z
  .object({
    id: z.string().openapi({ example: "imp_mi1x2y3zAbCdEfGhIjKl" }),
    model: z.string().openapi({ example: "minilm" }),
    expiresAt: z.string().openapi({ description: "When the upload URLs expire." }),
    uploads: z.record(z.string(), Put).openapi({
      description: "One presigned PUT per file of `manifest.files` (a single PUT of any size, no multipart).",
    }),
  })
  .openapi("ModelImport");

const route = createRoute({
  method: "post",
  path: "/v1/models/{name}/imports",
  tags: ["models"],
  summary: "Start a presigned import: validate the manifest, get one PUT URL per file",
  description:
    "For encoders above the 100 MiB request limit of `POST /v1/models/{name}/versions`, or to send fp32 and int8 " +
    "in one version: the manifest is validated first (400/422 naming the field), then each file of " +
    '`manifest.files` is PUT straight to storage (`curl -X PUT --upload-file model.onnx.data "$url"`), then ' +
    "`POST /v1/models/{name}/imports/{id}/complete` verifies and registers. Extra files (e.g. `weights`: the " +
    "encoder's safetensors, which makes the version continuable with `init_from`) and unknown manifest keys " +
    "pass through. `python -m selfsup_trainer import` does all three steps.",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: {
    params: z.object({ name: ModelName }),
    body: jsonBody(
      z.object({
        manifest: z
          .record(z.string(), z.unknown())
          .openapi({ description: "The `selfsup.encoder/v1` manifest (as in manifest.json)." }),
      }),
    ),
  },
  responses: { 201: jsonResponse(ImportSchema, "The pending import and its upload URLs."), ...errorResponses },
});

export const registerV1ModelsImportsCreate = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, presign } = c.get("services");
    const auth = c.get("auth");
    const { name } = c.req.valid("param");
    const manifest = parseManifest(c.req.valid("json").manifest);
    await checkModelModality(db, auth.tenantId, name, manifest.modality);
    const id = newId("imp");
    // Uploads land under a staging prefix; /complete copies the checked versions to keys no URL is
    // signed for, so a PUT URL still valid after /complete cannot change a registered file.
    const prefix = `staging/models/${auth.tenantId}/${name}/${id}`;
    const uploads: Record<string, z.infer<typeof Put>> = {};
    for (const file of Object.keys(manifest.files)) {
      uploads[file] = { ...(await presign("PUT", `${prefix}/${file}`)), method: "PUT" };
    }
    const expiresAt = Date.now() + URL_TTL_SECONDS * 1000;
    await db.insert(modelImports).values({
      id,
      tenantId: auth.tenantId,
      modelName: name,
      manifest,
      prefix,
      createdBy: auth.keyId,
      expiresAt,
    });
    return c.json({ id, model: name, expiresAt: new Date(expiresAt).toISOString(), uploads }, 201);
  });
