import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, isNull, sql } from "drizzle-orm";
import { modelImports, models, modelVersions } from "../../db/schema";
import { newId } from "../lib/crypto";
import { ApiError, conflict, errorResponses, notFound, unprocessable } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { ModelName } from "../lib/schemas";
import { requireScope } from "../middleware/auth";
import { checkStoredArtifacts, versionFiles } from "../services/artifacts";
import { ObjectChanged, type ObjectVersion, promoteObject } from "../services/datasets";
import { parseManifest } from "../services/manifest";
import { aliasesOf, checkModelModality, forgetAliases, registerVersionStatements } from "../services/registry";
import { VersionSchema, versionView } from "./views/model_views";

const route = createRoute({
  method: "post",
  path: "/v1/models/{name}/imports/{id}/complete",
  tags: ["models"],
  summary: "Finish a presigned import: verify every uploaded file, run the graph once, register the version",
  description:
    "Each uploaded file's size and SHA-256 are checked against the manifest (hashed as a stream), then the same " +
    "checks as the multipart import: ONNX structure, tokenizer vs max_tokens, and every variant that fits the " +
    "Worker loaded and run once on a probe input with the manifest's dims (422 naming the file or field). The " +
    "checked versions of the files are copied to keys no URL is signed for (a file PUT again meanwhile: 409, " +
    "retry), and the version (source `import`) is registered and `latest` moved in one batch. A repeated /complete answers the " +
    "same version (200) and never registers a second one. No body, or `{}`.",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { params: z.object({ name: ModelName, id: z.string() }) },
  responses: {
    201: jsonResponse(VersionSchema, "The registered version (now `latest`)."),
    200: jsonResponse(VersionSchema, "This import was already completed: its version."),
    ...errorResponses,
  },
});

export const registerV1ModelsImportsComplete = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db, storage } = c.get("services");
    const auth = c.get("auth");
    const { name, id } = c.req.valid("param");
    const find = () =>
      db.query.modelImports.findFirst({
        where: and(eq(modelImports.id, id), eq(modelImports.tenantId, auth.tenantId), eq(modelImports.modelName, name)),
      });
    const pending = await find();
    if (!pending)
      throw notFound(`No import \`${id}\` of model \`${name}\`; start one with POST /v1/models/${name}/imports.`);
    const answer = async (versionId: string, status: 200 | 201) => {
      const version = await db.query.modelVersions.findFirst({ where: eq(modelVersions.id, versionId) });
      const model = version && (await db.query.models.findFirst({ where: eq(models.id, version.modelId) }));
      if (!model || !version) throw new Error(`version ${versionId} of import ${id} vanished`);
      const aliases = (await aliasesOf(db, model.id)).filter((a) => a.version === version.version).map((a) => a.alias);
      return c.json(versionView(model, version, aliases), status);
    };
    if (pending.versionId) return answer(pending.versionId, 200);

    const manifest = parseManifest(pending.manifest);
    await checkModelModality(db, auth.tenantId, name, manifest.modality);
    const bucket = storage.bucket;
    // The version of each staged object is pinned before hashing: the copy below reads exactly that
    // version, so bytes PUT after this point are either the checked ones or make the copy fail.
    const staged = new Map<string, ObjectVersion>();
    for (const file of Object.keys(manifest.files)) {
      const head = await bucket.head(`${pending.prefix}/${file}`);
      if (head) staged.set(file, { key: head.key, etag: head.etag, size: head.size });
    }
    const problems = await checkStoredArtifacts(bucket, pending.prefix, manifest);
    if (problems.length > 0) throw unprocessable(`${problems[0]?.path}: ${problems[0]?.message}`, problems);

    const versionId = newId("mv");
    const prefix = `models/${auth.tenantId}/${name}/${versionId}`;
    const files = versionFiles(prefix, manifest);
    try {
      for (const [file, meta] of Object.entries(files)) {
        const v = staged.get(file);
        if (!v) throw new ObjectChanged(`${file} appeared during the check`);
        await promoteObject(bucket, v, meta.key, meta.sha256);
      }
    } catch (e) {
      await storage.delete(Object.values(files).map((f) => f.key)).catch(() => {});
      if (e instanceof ObjectChanged) {
        throw conflict(
          `A file of import ${id} was uploaded again during /complete (${e.message}); call /complete again.`,
        );
      }
      throw e;
    }
    await storage.put(`${prefix}/manifest.json`, JSON.stringify(manifest), "application/json");

    try {
      await db.batch([
        ...registerVersionStatements(db, {
          tenantId: auth.tenantId,
          modelName: name,
          modality: manifest.modality,
          versionId,
          dims: manifest.dims,
          manifest,
          files,
          source: "import",
          actorKeyId: auth.keyId,
          guard: sql`exists (select 1 from ${modelImports} where id = ${id} and version_id is null)`,
        }),
        db
          .update(modelImports)
          .set({ versionId, completedAt: Date.now() })
          .where(and(eq(modelImports.id, id), isNull(modelImports.versionId))),
      ]);
      forgetAliases(auth.tenantId);
    } catch (e) {
      const text = String((e as { cause?: unknown }).cause ?? e);
      // Not registered: the copies are unreachable.
      await storage.delete([...Object.values(files).map((f) => f.key), `${prefix}/manifest.json`]).catch(() => {});
      // A concurrent /complete of the same import won: answer its version.
      const done = await find();
      if (done?.versionId) return answer(done.versionId, 200);
      if (text.includes("UNIQUE constraint failed: model_versions")) {
        throw new ApiError(
          503,
          "busy",
          `Another version of \`${name}\` was registered at the same moment; retry /complete.`,
        );
      }
      throw e;
    }
    // The staged uploads are copied; drop them (best effort: a leftover is never read).
    await storage.delete(Object.keys(manifest.files).map((f) => `${pending.prefix}/${f}`)).catch(() => {});
    return answer(versionId, 201);
  });
