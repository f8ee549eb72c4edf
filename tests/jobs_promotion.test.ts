// Continued pretraining (`init_from`), promote-if-better and the stale error text (issue 13 API
// side, issue 14 item 7): jobs through the real trainer protocol, probes through onnxruntime-web.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { readySet } from "./dataset_upload";
import { type FixtureManifest, fixtureBytes, fixtureManifest } from "./fixture";
import fortunesJson from "./fixtures/probe/fortunes.json";
import { addKey, api, expectProblem, newTenant } from "./helpers";
import { importEncoder } from "./modal_fixture";

const enc = new TextEncoder();
const CORPUS = enc.encode("Call me Ishmael.\nSome years ago, never mind how long precisely.\nIt is a way I have.\n");

type Claim = {
  job: { id: string; config: Record<string, unknown> };
  lease: { token: string };
  init: {
    ref: string;
    manifest: Record<string, unknown>;
    files: Record<string, { method: string; url: string; sha256: string; bytes: number }>;
  } | null;
};
type Job = {
  id: string;
  status: string;
  error: string | null;
  modelVersion: string | null;
  initFrom: string | null;
  promote: string;
  promotion: {
    policy: string;
    candidate: { ref: string; linear: number | null };
    incumbent: { ref: string; linear: number | null } | null;
    promoted: boolean;
    evalDataset: string;
  } | null;
  events: { kind: string; data: Record<string, unknown> | null }[];
};

/** An artifact set: name → bytes, and its manifest with matching sha256/bytes. */
type Artifact = { manifest: FixtureManifest; files: Record<string, Uint8Array> };

async function artifact(
  replace: Record<string, Uint8Array> = {},
  extra: Partial<FixtureManifest> = {},
): Promise<Artifact> {
  const manifest = { ...fixtureManifest(), ...extra } as FixtureManifest;
  manifest.files = { ...manifest.files };
  const files: Record<string, Uint8Array> = {};
  for (const name of new Set([...Object.keys(manifest.files), ...Object.keys(replace)])) {
    const bytes = replace[name] ?? fixtureBytes(name);
    files[name] = bytes;
    manifest.files[name] = { sha256: await sha256Hex(bytes), bytes: bytes.byteLength };
  }
  return { manifest, files };
}

/** The fixture plus PyTorch weights (a stand-in safetensors file): a version jobs can continue. */
const continuable = (extra: Partial<FixtureManifest> = {}) =>
  artifact({ "encoder.safetensors": enc.encode("stand-in safetensors") }, { weights: "encoder.safetensors", ...extra });

/**
 * The fixture's graph with a tokenizer that knows only its special tokens: every word is [UNK], so
 * every text embeds (nearly) alike — a deliberately useless encoder that still passes the import
 * checks (it loads, runs, returns 128 finite dims).
 */
function unkTokenizer(): Uint8Array {
  const json = JSON.parse(new TextDecoder().decode(fixtureBytes("tokenizer.json")));
  json.model.vocab = Object.fromEntries(
    Object.entries(json.model.vocab as Record<string, number>).filter(([t]) => t.startsWith("[")),
  );
  return enc.encode(JSON.stringify(json));
}

async function importArtifact(key: string, model: string, a: Artifact) {
  const form = new FormData();
  form.append("manifest", JSON.stringify(a.manifest));
  for (const [name, bytes] of Object.entries(a.files)) form.append("files", new File([bytes], name));
  const res = await api(`/v1/models/${model}/versions`, { method: "POST", key, body: form });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<{ ref: string }>();
}

const post = (key: string, json: Record<string, unknown>) => api("/v1/pretraining/jobs", { method: "POST", key, json });
const getJob = async (key: string, id: string) => (await api(`/v1/pretraining/jobs/${id}`, { key })).json<Job>();
const claim = async (key: string) => {
  const res = await api("/v1/trainer/claim", { method: "POST", key, json: { owner: "t1" } });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Claim>();
};

/** What a trainer does after training: upload the artifact's files under the attempt's prefix, /complete. */
async function finish(trainer: string, tenantId: string, c: Claim, a: Artifact, attempt = 1) {
  for (const [name, bytes] of Object.entries(a.files)) {
    await env.ARTIFACTS.put(`jobs/${tenantId}/${c.job.id}/attempt-${attempt}/artifacts/${name}`, bytes);
  }
  const res = await api(`/v1/trainer/jobs/${c.job.id}/complete`, {
    method: "POST",
    key: trainer,
    json: { lease_token: c.lease.token, manifest: a.manifest },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Job>();
}

let t: { tenantId: string; secret: string; trainer: string; corpus: string; probe: string };

beforeAll(async () => {
  const tenant = await newTenant(["admin"]);
  const trainer = await addKey(tenant.tenantId, ["trainer"]);
  const corpus = await readySet(tenant.secret, CORPUS, { modality: "text", format: "txt" });
  const lines = fortunesJson.texts.map((text, i) =>
    JSON.stringify({ text, label: fortunesJson.label_names[fortunesJson.labels[i] as number] }),
  );
  const probe = await readySet(tenant.secret, enc.encode(lines.join("\n")), {
    modality: "text",
    format: "jsonl",
    purpose: "probe",
    name: "fortunes",
  });
  t = { ...tenant, trainer: trainer.secret, corpus: corpus.id, probe: probe.id };
});

describe("init_from: continued pretraining", () => {
  it("is validated at creation: resolves in the tenant, same modality, has weights, a continuable objective", async () => {
    await importArtifact(t.secret, "plain", await artifact());
    await importArtifact(t.secret, "cont", await continuable());
    const base = { dataset: t.corpus, objective: "mlm", model: "m" };
    const bad = async (json: Record<string, unknown>, path: string, detail: RegExp) => {
      const p = await expectProblem(await post(t.secret, { ...base, ...json }), 422);
      expect(p.errors?.map((e) => e.path)).toContain(path);
      expect(p.detail).toMatch(detail);
    };
    await bad({ init_from: "nope@1" }, "init_from", /nope/);
    await bad({ init_from: "cont@7" }, "init_from", /cont@7/);
    await bad({ init_from: "plain" }, "init_from", /no PyTorch weights.*python -m selfsup_trainer import/);
    await bad({ init_from: "cont", objective: "mlm+nsp" }, "objective", /mlm, simcse, mlm\+simcse/);
    // An image encoder cannot continue on text, even with weights.
    await importEncoder(t.secret, "tiny-image-encoder", "pixels", (m) => ({
      ...m,
      weights: "model.onnx",
    }));
    await bad({ init_from: "pixels@1" }, "init_from", /pixels@1 is an image encoder; the dataset holds text/);
    // Another tenant's version does not resolve.
    const other = await newTenant(["admin"]);
    const otherCorpus = await readySet(other.secret, CORPUS, { modality: "text", format: "txt" });
    const p = await expectProblem(
      await post(other.secret, { ...base, dataset: otherCorpus.id, init_from: "cont" }),
      422,
    );
    expect(p.errors?.[0]?.path).toBe("init_from");
  });

  it("is resolved once to a fixed version; the claim carries its manifest and signed GETs; lineage is kept", async () => {
    const tenant = await newTenant(["admin"]);
    const trainer = (await addKey(tenant.tenantId, ["trainer"])).secret;
    const corpus = await readySet(tenant.secret, CORPUS, { modality: "text", format: "txt" });
    const a = await continuable();
    await importArtifact(tenant.secret, "base", a);
    const res = await post(tenant.secret, {
      dataset: corpus.id,
      objective: "simcse",
      model: "base",
      init_from: "base@latest",
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const job = await res.json<Job>();
    expect(job.initFrom).toBe("base@1");
    // latest moves after creation: the job still continues base@1.
    await importArtifact(tenant.secret, "base", await artifact());
    const c = await claim(trainer);
    expect(c.job.id).toBe(job.id);
    expect(c.job.config).not.toHaveProperty("init_from");
    expect(c.init?.ref).toBe("base@1");
    expect(c.init?.manifest).toMatchObject({ weights: "encoder.safetensors", architecture: { hidden: 128 } });
    expect(Object.keys(c.init?.files ?? {}).sort()).toEqual(["encoder.safetensors", "tokenizer.json"]);
    for (const [name, f] of Object.entries(c.init?.files ?? {})) {
      expect(f.method).toBe("GET");
      expect(f).toMatchObject({ sha256: a.manifest.files[name]?.sha256, bytes: a.manifest.files[name]?.bytes });
      expect(new URL(f.url).searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
      expect(decodeURIComponent(new URL(f.url).pathname)).toContain(`/models/${tenant.tenantId}/base/`);
    }
    // The trained version keeps the weights (so it can be continued again) and records its lineage.
    // The manifest names the job's objective (the fixture was trained with mlm; this job is simcse).
    const done = await finish(trainer, tenant.tenantId, c, await continuable({ objective: "simcse" }));
    expect(done).toMatchObject({ status: "succeeded", modelVersion: "base@3", initFrom: "base@1" });
    const v = await (await api("/v1/models/base/versions/3", { key: tenant.secret })).json<{ initFrom: string }>();
    expect(v.initFrom).toBe("base@1");
    const chained = await post(tenant.secret, {
      dataset: corpus.id,
      objective: "mlm",
      model: "base",
      init_from: "base@3",
    });
    expect(chained.status).toBe(201);
    // A job without init_from claims with `init: null`.
    await api(`/v1/pretraining/jobs/${(await chained.json<Job>()).id}/cancel`, { method: "POST", key: tenant.secret });
    await post(tenant.secret, { dataset: corpus.id, objective: "mlm", model: "other" });
    expect((await claim(trainer)).init).toBeNull();
  });
});

describe("promote: if_better", () => {
  it("needs an eval set", async () => {
    const p = await expectProblem(
      await post(t.secret, { dataset: t.corpus, objective: "mlm", model: "m", promote: "if_better" }),
      422,
    );
    expect(p.errors?.[0]?.path).toBe("promote");
  });

  it("no incumbent: moves; a worse candidate: registered, latest kept; a better one: moves — both numbers recorded", async () => {
    const good = await artifact();
    const broken = await artifact({ "tokenizer.json": unkTokenizer() });
    const job = (model: string) =>
      post(t.secret, {
        dataset: t.corpus,
        objective: "mlm",
        model,
        promote: "if_better",
        eval: { dataset: t.probe },
        hyperparameters: { steps: 10 },
      }).then((r) => r.json<Job>());
    const latest = async (model: string) =>
      (await (await api(`/v1/models/${model}`, { key: t.secret })).json<{ aliases: Record<string, number> }>()).aliases
        .latest;

    // 1. No incumbent: the first version becomes latest.
    const j1 = await job("promo");
    expect(j1.promote).toBe("if_better");
    const d1 = await finish(t.trainer, t.tenantId, await claim(t.trainer), good);
    expect(d1.promotion).toMatchObject({ policy: "if_better", incumbent: null, promoted: true, evalDataset: t.probe });
    expect(d1.promotion?.candidate.ref).toBe("promo@1");
    const goodScore = d1.promotion?.candidate.linear as number;
    expect(goodScore).toBeGreaterThan(0.25);
    expect(await latest("promo")).toBe(1);

    // 2. A worse candidate: registered as promo@2, latest stays at 1.
    await job("promo");
    const d2 = await finish(t.trainer, t.tenantId, await claim(t.trainer), broken);
    expect(d2.modelVersion).toBe("promo@2");
    expect(d2.promotion).toMatchObject({ promoted: false, incumbent: { ref: "promo@1", linear: goodScore } });
    expect(d2.promotion?.candidate.linear).toBeLessThan(goodScore);
    expect(d2.events.map((e) => e.kind)).toContain("promotion");
    expect(await latest("promo")).toBe(1);

    // 3. A better candidate than the incumbent (the broken encoder): latest moves, with a reason.
    await importArtifact(t.secret, "promo2", broken);
    await job("promo2");
    const d3 = await finish(t.trainer, t.tenantId, await claim(t.trainer), good);
    expect(d3.promotion).toMatchObject({ promoted: true, candidate: { ref: "promo2@2", linear: goodScore } });
    expect(d3.promotion?.incumbent?.ref).toBe("promo2@1");
    expect(d3.promotion?.incumbent?.linear).toBeLessThan(goodScore);
    expect(await latest("promo2")).toBe(2);
    const history = await (await api("/v1/models/promo2/aliases/latest/history", { key: t.secret })).json<{
      data: { to: number; reason: string | null }[];
    }>();
    expect(history.data[0]).toMatchObject({ to: 2 });
    expect(history.data[0]?.reason).toMatch(/promote if_better: linear 0\.\d{4} > 0\.\d{4} \(promo2@1\)/);
  });

  it("always (the default) moves latest without scoring", async () => {
    await post(t.secret, {
      dataset: t.corpus,
      objective: "mlm",
      model: "plain-always",
      hyperparameters: { steps: 10 },
    });
    const d = await finish(t.trainer, t.tenantId, await claim(t.trainer), await artifact());
    expect(d).toMatchObject({ promote: "always", promotion: null, modelVersion: "plain-always@1" });
  });
});

describe("trainer /complete runs the graph like an import", () => {
  it("refuses a manifest whose dims the graph does not return (422 naming dims); the job keeps its lease", async () => {
    await post(t.secret, { dataset: t.corpus, objective: "mlm", model: "liar", hyperparameters: { steps: 10 } });
    const c = await claim(t.trainer);
    const a = await artifact({}, { dims: 64 });
    for (const [name, bytes] of Object.entries(a.files)) {
      await env.ARTIFACTS.put(`jobs/${t.tenantId}/${c.job.id}/attempt-1/artifacts/${name}`, bytes);
    }
    const res = await api(`/v1/trainer/jobs/${c.job.id}/complete`, {
      method: "POST",
      key: t.trainer,
      json: { lease_token: c.lease.token, manifest: a.manifest },
    });
    const p = await expectProblem(res, 422);
    expect(p.errors?.map((e) => e.path)).toContain("dims");
    expect(p.detail).toMatch(/64/);
    expect((await getJob(t.secret, c.job.id)).status).toBe("running");
    await finish(t.trainer, t.tenantId, c, await artifact());
  });
});

describe("stale error text", () => {
  it("an earlier attempt's error is cleared when the job succeeds (kept in the events)", async () => {
    const made = await post(t.secret, {
      dataset: t.corpus,
      objective: "mlm",
      model: "flaky",
      hyperparameters: { steps: 10 },
    });
    const id = (await made.json<Job>()).id;
    const c1 = await claim(t.trainer);
    const failed = await api(`/v1/trainer/jobs/${id}/fail`, {
      method: "POST",
      key: t.trainer,
      json: { lease_token: c1.lease.token, error: "CUDA OOM", retryable: true },
    });
    expect((await failed.json<Job>()).error).toBe("CUDA OOM");
    const c2 = await claim(t.trainer);
    const done = await finish(t.trainer, t.tenantId, c2, await artifact(), 2);
    expect(done).toMatchObject({ status: "succeeded", error: null });
    expect((await getJob(t.secret, id)).events.some((e) => e.kind === "failed" || e.kind === "retry")).toBe(true);
  });
});
