// One definition of each contract fact (issue 17): the committed contract.json is what
// api/contract.ts renders, a job stores objective/preset/modality once (columns, not config), the
// trainer still gets them in its claim's config, and /complete checks the manifest against the job.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { contractJson, Hyperparameters, MODALITIES } from "../api/contract";
import contractFile from "../gpu-trainer/selfsup_trainer/contract.json";
import { readySet } from "./dataset_upload";
import { fixtureBytes, fixtureManifest } from "./fixture";
import { addKey, api, count, expectProblem, newTenant } from "./helpers";

const enc = new TextEncoder();
const CORPUS = enc.encode("Call me Ishmael.\nSome years ago, never mind how long precisely.\nIt is a way I have.\n");
const HYPER = { steps: 40, checkpoint_every: 10 };

type Claim = { job: { id: string; config: Record<string, unknown> }; lease: { token: string } };
type Job = { status: string; modelVersion: string | null; hyperparameters: Record<string, unknown> };

async function queuedJob() {
  const t = await newTenant(["train", "embed"]);
  const trainer = (await addKey(t.tenantId, ["trainer"])).secret;
  const corpus = await readySet(t.secret, CORPUS, { modality: "text", format: "txt" });
  const res = await api("/v1/pretraining/jobs", {
    method: "POST",
    key: t.secret,
    json: { dataset: corpus.id, objective: "mlm", model: "enc", hyperparameters: HYPER },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return { ...t, trainer, job: await res.json<{ id: string } & Job>() };
}

async function claimed(trainer: string) {
  const res = await api("/v1/trainer/claim", { method: "POST", key: trainer, json: { owner: "t1" } });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Claim>();
}

const storedConfig = async (id: string) =>
  JSON.parse(
    (await env.DB.prepare("select config from training_jobs where id = ?").bind(id).first<{ config: string }>())
      ?.config ?? "null",
  );

describe("the contract file", () => {
  it("is what api/contract.ts renders (npm run contract:generate after changing it)", () => {
    expect(JSON.parse(JSON.stringify(contractJson()))).toEqual(contractFile);
    expect(contractFile.modalities).toEqual([...MODALITIES]);
    // Every zod field is in the JSON Schema and nothing else: the trainer derives its checks from it.
    expect(Object.keys(contractFile.hyperparameters.properties).sort()).toEqual(
      Object.keys(Hyperparameters.shape).sort(),
    );
    // series_length: 0 or >= 2 — the zod refinement and the schema's `not` say the same.
    expect(Hyperparameters.safeParse({ series_length: 1 }).success).toBe(false);
    expect(contractFile.hyperparameters.properties.series_length.not).toEqual({ const: 1 });
  });
});

describe("objective, preset and modality are stored once", () => {
  it("live in columns: config holds the hyperparameters; the view and the claim are unchanged on the wire", async () => {
    const s = await queuedJob();
    expect(await storedConfig(s.job.id)).toEqual(HYPER);
    expect(s.job.hyperparameters).toEqual(HYPER);
    const c = await claimed(s.trainer);
    expect(c.job.config).toEqual({ objective: "mlm", preset: "tiny", modality: "text", ...HYPER });
  });

  it("migration 0003 strips the copies older rows held; views and claims read the same", async () => {
    const s = await queuedJob();
    const legacy = { objective: "mlm", preset: "tiny", modality: "text", ...HYPER };
    await env.DB.prepare("update training_jobs set config = ? where id = ?")
      .bind(JSON.stringify(legacy), s.job.id)
      .run();
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0003_"));
    expect(migration?.name).toBe("0003_strip_job_config_facts.sql");
    for (const q of migration?.queries ?? []) await env.DB.prepare(q).run();
    expect(await storedConfig(s.job.id)).toEqual(HYPER);
    const view = await (await api(`/v1/pretraining/jobs/${s.job.id}`, { key: s.secret })).json<Job>();
    expect(view.hyperparameters).toEqual(HYPER);
    expect((await claimed(s.trainer)).job.config).toEqual(legacy);
  });
});

describe("trainer /complete checks the manifest against the job", () => {
  it("refuses another objective or none (422 naming manifest.objective), registers nothing, keeps the lease", async () => {
    const s = await queuedJob();
    const c = await claimed(s.trainer);
    for (const name of Object.keys(fixtureManifest().files)) {
      await env.ARTIFACTS.put(`jobs/${s.tenantId}/${s.job.id}/attempt-1/artifacts/${name}`, fixtureBytes(name));
    }
    const complete = (manifest: Record<string, unknown>) =>
      api(`/v1/trainer/jobs/${s.job.id}/complete`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: c.lease.token, manifest },
      });
    let p = await expectProblem(await complete({ ...fixtureManifest(), objective: "simcse" }), 422);
    expect(p.errors).toEqual([{ path: "manifest.objective", message: 'is "simcse", the job trains mlm' }]);
    const { objective: _, ...withoutObjective } = fixtureManifest() as Record<string, unknown>;
    p = await expectProblem(await complete(withoutObjective), 422);
    expect(p.errors?.[0]).toEqual({ path: "manifest.objective", message: "is missing, the job trains mlm" });
    expect(await count("model_versions", "job_id = ?", s.job.id)).toBe(0);
    expect((await api(`/v1/pretraining/jobs/${s.job.id}`, { key: s.secret }).then((r) => r.json<Job>())).status).toBe(
      "running",
    );
    // The lease still holds: the right manifest completes the job.
    const done = await complete(fixtureManifest());
    expect(done.status, await done.clone().text()).toBe(200);
    expect(await done.json<Job>()).toMatchObject({ status: "succeeded", modelVersion: "enc@1" });
  });
});
