import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { finetunedArtifact, importArtifact } from "./finetune_fixture";
import { fixtureManifest, importFixture, importForm } from "./fixture";
import { api, count, expectProblem, newTenant } from "./helpers";

type Version = {
  id: string;
  version: number;
  ref: string;
  aliases: string[];
  files: Record<string, { sha256: string }>;
};

describe("model registry", () => {
  it("imports the fixture encoder: files in R2 with their sha256, version 1 becomes latest", async () => {
    const { secret, tenantId } = await newTenant(["train", "embed"]);
    const v = (await importFixture(secret, "tiny")) as Version;
    expect(v).toMatchObject({ version: 1, ref: "tiny@1", aliases: ["latest"] });
    const manifest = fixtureManifest();
    for (const [name, f] of Object.entries(manifest.files)) {
      const obj = await env.ARTIFACTS.head(`models/${tenantId}/tiny/${v.id}/${name}`);
      expect(obj?.size, name).toBe(f.bytes);
      expect(obj?.customMetadata?.sha256).toBe(f.sha256);
      expect(v.files[name]?.sha256).toBe(f.sha256);
    }
    const v2 = (await importFixture(secret, "tiny")) as Version;
    expect(v2.version).toBe(2);

    const list = await (await api("/v1/models", { key: secret })).json<{
      object: string;
      data: Record<string, unknown>[];
    }>();
    expect(list.object).toBe("list");
    expect(list.data).toEqual([
      expect.objectContaining({ id: "tiny", object: "model", owned_by: tenantId, versions: 2, aliases: { latest: 2 } }),
    ]);
    expect(typeof list.data[0]?.created).toBe("number");

    const model = await (await api("/v1/models/tiny", { key: secret })).json<{ data: Version[] }>();
    expect(model.data.map((x) => x.version)).toEqual([2, 1]);
    for (const sel of ["1", "latest"]) {
      const one = await api(`/v1/models/tiny/versions/${sel}`, { key: secret });
      expect(one.status).toBe(200);
    }
    expect((await (await api("/v1/models/tiny/versions/latest", { key: secret })).json<Version>()).version).toBe(2);
  });

  it("moves aliases and keeps their history", async () => {
    const { secret, keyId } = await newTenant(["train", "embed"]);
    await importFixture(secret, "enc");
    await importFixture(secret, "enc");
    const put = (version: number) =>
      api("/v1/models/enc/aliases/production", {
        method: "PUT",
        key: secret,
        json: { version, reason: `ship ${version}` },
      });
    expect((await (await put(1)).json<Version>()).aliases).toContain("production");
    await put(2);
    await put(2); // no-op: not a history entry
    await put(1);
    const hist = await (await api("/v1/models/enc/aliases/production/history", { key: secret })).json<{
      data: { from: number | null; to: number; actorKeyId: string; reason: string }[];
    }>();
    expect(hist.data.map((e) => [e.from, e.to])).toEqual([
      [2, 1],
      [1, 2],
      [null, 1],
    ]);
    expect(hist.data[0]).toMatchObject({ actorKeyId: keyId, reason: "ship 1" });
    const latest = await (await api("/v1/models/enc/aliases/latest/history", { key: secret })).json<{
      data: unknown[];
    }>();
    expect(latest.data).toHaveLength(2);
    await expectProblem(await put(9), 404);
  });

  const broken: [
    string,
    (m: ReturnType<typeof fixtureManifest>) => { manifest: ReturnType<typeof fixtureManifest>; files?: string[] },
    number,
    RegExp,
  ][] = [
    [
      "a wrong sha256",
      (m) => ({
        manifest: {
          ...m,
          files: {
            ...m.files,
            "tokenizer.json": {
              ...(m.files["tokenizer.json"] as { sha256: string; bytes: number }),
              sha256: "0".repeat(64),
            },
          },
        },
      }),
      422,
      /sha256/,
    ],
    [
      "a missing file",
      (m) => ({ manifest: m, files: Object.keys(m.files).filter((f) => f !== "model.onnx.data") }),
      422,
      /not uploaded/,
    ],
    ["an output the graph lacks", (m) => ({ manifest: { ...m, output: "pooled" } }), 422, /no output `pooled`/],
    [
      "an input the graph lacks",
      (m) => ({ manifest: { ...m, inputs: ["input_ids", "token_type_ids"] } }),
      422,
      /no input `token_type_ids`/,
    ],
    ["a manifest that fails validation", (m) => ({ manifest: { ...m, dims: -1 } }), 400, /manifest\.dims/],
    [
      "a non-ONNX model file",
      (m) => ({ manifest: { ...m, variants: { fp32: { model: "tokenizer.json" } } } }),
      422,
      /not a valid ONNX/,
    ],
  ];
  for (const [name, mutate, status, detail] of broken) {
    it(`refuses an import with ${name} and writes nothing`, async () => {
      const { secret, tenantId } = await newTenant(["train"]);
      const { manifest, files } = mutate(fixtureManifest());
      const res = await api("/v1/models/bad/versions", {
        method: "POST",
        key: secret,
        body: importForm(manifest, files),
      });
      const p = await expectProblem(res, status);
      expect(JSON.stringify(p)).toMatch(detail);
      expect(await count("models", "tenant_id = ?", tenantId)).toBe(0);
      expect(await count("model_versions", "tenant_id = ?", tenantId)).toBe(0);
      expect((await env.ARTIFACTS.list({ prefix: `models/${tenantId}/` })).objects).toHaveLength(0);
    });
  }

  it("415 for a non-multipart import; 404 for other tenants' models; 403 without the scope", async () => {
    const a = await newTenant(["train", "embed"]);
    const b = await newTenant(["train", "embed"]);
    await expectProblem(await api("/v1/models/x/versions", { method: "POST", key: a.secret, json: {} }), 415);
    await importFixture(a.secret, "mine");
    await expectProblem(await api("/v1/models/mine", { key: b.secret }), 404);
    await expectProblem(await api("/v1/models/mine/versions/1", { key: b.secret }), 404);
    await expectProblem(
      await api("/v1/models/mine/aliases/prod", { method: "PUT", key: b.secret, json: { version: 1 } }),
      404,
    );
    const embedOnly = await newTenant(["embed"]);
    await expectProblem(
      await api("/v1/models/x/versions", { method: "POST", key: embedOnly.secret, body: importForm() }),
      403,
    );
  });

  it("a fine-tuned version shows finetuned_from and its head's labels in the version view and /info", async () => {
    const { secret } = await newTenant(["train", "embed"]);
    const plain = (await importFixture(secret, "base")) as Version & Record<string, unknown>;
    expect(plain).toMatchObject({ finetunedFrom: null, head: null });
    const labels = ["animal", "plant", "stone"];
    await importArtifact(secret, "cls", await finetunedArtifact(labels, { finetuned_from: "base@1" }));
    const head = { labels, output: "logits", activation: "softmax" };
    const version = await (await api("/v1/models/cls/versions/1", { key: secret })).json<Record<string, unknown>>();
    expect(version).toMatchObject({ ref: "cls@1", finetunedFrom: "base@1", initFrom: null, head });
    const listed = await (await api("/v1/models/cls", { key: secret })).json<{ data: Record<string, unknown>[] }>();
    expect(listed.data[0]).toMatchObject({ finetunedFrom: "base@1", head });
    const info = await (await api("/v1/models/cls@latest/info", { key: secret })).json<Record<string, unknown>>();
    expect(info).toMatchObject({ model: "cls@1", finetuned_from: "base@1", head });
    const plainInfo = await (await api("/v1/models/base/info", { key: secret })).json<Record<string, unknown>>();
    expect(plainInfo).toMatchObject({ finetuned_from: null, head: null });
  });
});
