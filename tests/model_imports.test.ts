// Presigned model imports (issue 13): POST /v1/models/{name}/imports → PUT each file → /complete.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { type FixtureManifest, fixtureBytes, fixtureManifest } from "./fixture";
import { api, count, expectProblem, newTenant } from "./helpers";

type Pending = {
  id: string;
  model: string;
  expiresAt: string;
  uploads: Record<string, { method: string; url: string; expiresAt: string }>;
};

/**
 * What a client's PUT to the presigned URL does. workerd's test runtime does not serve the local
 * S3 endpoint `wrangler dev` serves (the e2e tests PUT through it for real), so the object goes
 * to the key the URL names, which is what the S3 endpoint would write.
 */
async function putSigned(url: string, bytes: Uint8Array) {
  const u = new URL(url);
  expect(u.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
  expect(u.searchParams.get("X-Amz-Expires")).toBe("900");
  const key = decodeURIComponent(u.pathname.replace(/^\/cdn-cgi\/local\/r2\/s3\/[^/]+\//, ""));
  await env.ARTIFACTS.put(key, bytes);
  return key;
}

const start = (key: string, manifest: unknown, model = "minilm") =>
  api(`/v1/models/${model}/imports`, { method: "POST", key, json: { manifest } });
const complete = (key: string, id: string, model = "minilm", init: RequestInit = {}) =>
  api(`/v1/models/${model}/imports/${id}/complete`, { method: "POST", key, ...init });

/** The fixture plus a stand-in safetensors file as `weights`, and extra pass-through keys. */
async function withWeights(): Promise<{ manifest: FixtureManifest; files: Record<string, Uint8Array> }> {
  const manifest = fixtureManifest() as FixtureManifest & Record<string, unknown>;
  const weights = new TextEncoder().encode("stand-in safetensors bytes");
  const files: Record<string, Uint8Array> = {};
  for (const name of Object.keys(manifest.files)) files[name] = fixtureBytes(name);
  files["encoder.safetensors"] = weights;
  manifest.files["encoder.safetensors"] = { sha256: await sha256Hex(weights), bytes: weights.byteLength };
  return {
    manifest: {
      ...manifest,
      weights: "encoder.safetensors",
      isotropy: { mean_pairwise_cosine: 0.21 },
      postprocess: { kind: "whiten" },
      source_model: "sentence-transformers/all-MiniLM-L6-v2",
    },
    files,
  };
}

describe("presigned model import", () => {
  it("round trip: both precisions and the weights in one version, extra keys kept, embeddings served", async () => {
    const { secret, tenantId } = await newTenant(["train", "embed"]);
    const { manifest, files } = await withWeights();
    const res = await start(secret, manifest);
    expect(res.status, await res.clone().text()).toBe(201);
    const pending = await res.json<Pending>();
    expect(pending.id).toMatch(/^imp_/);
    expect(pending.model).toBe("minilm");
    expect(Object.keys(pending.uploads).sort()).toEqual(Object.keys(manifest.files).sort());
    for (const [name, u] of Object.entries(pending.uploads)) {
      expect(u.method).toBe("PUT");
      const key = await putSigned(u.url, files[name] as Uint8Array);
      expect(key).toBe(`staging/models/${tenantId}/minilm/${pending.id}/${name}`);
    }
    // A JSON content type with no body is fine.
    const done = await complete(secret, pending.id, "minilm", { headers: { "content-type": "application/json" } });
    expect(done.status, await done.clone().text()).toBe(201);
    const v = await done.json<{
      id: string;
      version: number;
      ref: string;
      source: string;
      aliases: string[];
      files: Record<string, unknown>;
      manifest: Record<string, unknown>;
    }>();
    expect(v).toMatchObject({ version: 1, ref: "minilm@1", source: "import", aliases: ["latest"] });
    expect(Object.keys(v.files)).toContain("encoder.safetensors");
    expect(v.manifest).toMatchObject({
      weights: "encoder.safetensors",
      isotropy: { mean_pairwise_cosine: 0.21 },
      source_model: "sentence-transformers/all-MiniLM-L6-v2",
    });
    for (const precision of ["fp32", "int8"]) {
      const e = await api("/v1/embeddings", {
        method: "POST",
        key: secret,
        json: { model: "minilm", input: "Call me Ishmael.", precision },
      });
      expect(e.status, await e.clone().text()).toBe(200);
    }
    // The checked bytes were copied to keys no URL is signed for; the staging objects are gone, and a
    // PUT URL still valid after /complete cannot change what the version serves.
    const vid = v.id;
    expect((await env.ARTIFACTS.list({ prefix: `staging/models/${tenantId}/` })).objects).toHaveLength(0);
    const late = await putSigned(pending.uploads["model.onnx"]?.url as string, new TextEncoder().encode("overwrite"));
    const registered = await env.ARTIFACTS.get(`models/${tenantId}/minilm/${vid}/model.onnx`);
    expect(await sha256Hex(new Uint8Array(await (registered as R2ObjectBody).arrayBuffer()))).toBe(
      manifest.files["model.onnx"]?.sha256,
    );
    await env.ARTIFACTS.delete(late);
    // Completing again answers the same version and registers nothing more.
    const again = await complete(secret, pending.id);
    expect(again.status).toBe(200);
    expect((await again.json<{ ref: string }>()).ref).toBe("minilm@1");
    expect(await count("model_versions", "tenant_id = ?", tenantId)).toBe(1);
  });

  it("422 naming a missing or altered file; the import stays completable once the right bytes are there", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const manifest = fixtureManifest();
    const pending = await (await start(secret, manifest)).json<Pending>();
    for (const [name, u] of Object.entries(pending.uploads)) {
      if (name !== "model.int8.onnx.data") await putSigned(u.url, fixtureBytes(name));
    }
    const missing = await expectProblem(await complete(secret, pending.id), 422);
    expect(missing.detail).toContain("model.int8.onnx.data");
    expect(missing.errors?.[0]?.path).toBe("files.model.int8.onnx.data");

    const bad = fixtureBytes("model.int8.onnx.data").slice();
    bad[1000] = (bad[1000] as number) ^ 0xff;
    const url = pending.uploads["model.int8.onnx.data"]?.url as string;
    await putSigned(url, bad);
    const altered = await expectProblem(await complete(secret, pending.id), 422);
    expect(altered.detail).toMatch(/model\.int8\.onnx\.data: sha256 is [0-9a-f]{64}, manifest says/);
    expect(await count("model_versions", "tenant_id = ?", tenantId)).toBe(0);

    await putSigned(url, fixtureBytes("model.int8.onnx.data"));
    expect((await complete(secret, pending.id)).status).toBe(201);
  });

  it("validates the manifest before signing anything; checks run at /complete; scopes and tenants hold", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const bad = await expectProblem(await start(secret, { ...fixtureManifest(), dims: 0 }), 400);
    expect(bad.errors?.[0]?.path).toBe("manifest.dims");
    const noWeights = await expectProblem(
      await start(secret, { ...fixtureManifest(), weights: "nope.safetensors" }),
      400,
    );
    expect(noWeights.errors?.[0]?.path).toBe("manifest.weights");
    expect(await count("model_imports", "tenant_id = ?", tenantId)).toBe(0);

    // dims that the graph does not return: refused at /complete, like the multipart import.
    const wrongDims = await (await start(secret, { ...fixtureManifest(), dims: 384 })).json<Pending>();
    for (const [name, u] of Object.entries(wrongDims.uploads)) await putSigned(u.url, fixtureBytes(name));
    const p = await expectProblem(await complete(secret, wrongDims.id), 422);
    expect(p.errors?.map((e) => e.path)).toContain("dims");

    const other = await newTenant(["train"]);
    await expectProblem(await complete(other.secret, wrongDims.id), 404);
    await expectProblem(await complete(secret, wrongDims.id, "another-model"), 404);
    const embedOnly = await newTenant(["embed"]);
    await expectProblem(await start(embedOnly.secret, fixtureManifest()), 403);
  });
});
