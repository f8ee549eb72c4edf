// Fine-tune jobs (issue 18, API side): creation and its refusals, the claim a trainer gets, and
// /complete requiring the head and writing `finetuned_from` lineage. The trainer is played by the
// test: it uploads a fine-tuned artifact built from the tiny text encoder (tests/finetune_fixture.ts).
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { readySet } from "./dataset_upload";
import { type Artifact, artifact, finetunedArtifact, importArtifact } from "./finetune_fixture";
import { addKey, api, count, expectProblem, newTenant } from "./helpers";
import { encoderManifest, importEncoder } from "./modal_fixture";

const enc = new TextEncoder();
const LABELS = ["animal", "plant", "stone"];
const jsonl = (rows: [string, string][]) =>
  enc.encode(rows.map(([text, label]) => JSON.stringify({ text, label })).join("\n"));
const TRAIN = jsonl([
  ["the whale sang in the deep", "animal"],
  ["a fox ran over the hill", "animal"],
  ["the oak grew tall", "plant"],
  ["moss covered the log", "plant"],
  ["granite is hard", "stone"],
  ["the pebble was smooth", "stone"],
]);

type Job = {
  id: string;
  object: string;
  kind: string;
  status: string;
  objective: string;
  base: string | null;
  initFrom: string | null;
  hyperparameters: Record<string, unknown>;
  modelVersion: string | null;
  evalDataset: string | null;
};
type Claim = {
  job: { id: string; kind: string; objective: string; modality: string; config: Record<string, unknown> };
  lease: { token: string };
  corpus: { sha256: string; format: string };
  evalSet: { format: string } | null;
  init: { ref: string; manifest: Record<string, unknown>; files: Record<string, { sha256: string }> } | null;
};

let t: { tenantId: string; secret: string; trainer: string; train: string; evalSet: string; corpus: string };

beforeAll(async () => {
  const tenant = await newTenant(["admin"]);
  const trainer = await addKey(tenant.tenantId, ["trainer"]);
  const probe = { modality: "text", format: "jsonl", purpose: "probe" as const };
  const train = await readySet(tenant.secret, TRAIN, probe);
  const evalSet = await readySet(
    tenant.secret,
    jsonl([
      ["a cat slept", "animal"],
      ["ferns are green", "plant"],
    ]),
    probe,
  );
  const corpus = await readySet(tenant.secret, enc.encode("Call me Ishmael.\nIt is a way I have.\n"), {
    modality: "text",
    format: "txt",
  });
  // The base: the tiny encoder with (stand-in) PyTorch weights, and one without.
  await importArtifact(tenant.secret, "demo", await artifact());
  const plain = await artifact();
  delete (plain.manifest as { weights?: string }).weights;
  delete plain.manifest.files["encoder.safetensors"];
  delete plain.files["encoder.safetensors"];
  await importArtifact(tenant.secret, "plain", plain);
  t = { ...tenant, trainer: trainer.secret, train: train.id, evalSet: evalSet.id, corpus: corpus.id };
});

const create = (json: Record<string, unknown>) => api("/v1/finetuning/jobs", { method: "POST", key: t.secret, json });
const body = (extra: Record<string, unknown> = {}) => ({
  model: "demo-cls",
  base: "demo@1",
  dataset: t.train,
  ...extra,
});

async function created(extra: Record<string, unknown> = {}) {
  const res = await create(body(extra));
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<Job>();
}

async function claim(): Promise<Claim> {
  // A fresh owner each time: a claim is idempotent per owner (a test that failed holding a lease
  // must not hand its job to the next test).
  const owner = `ft-${crypto.randomUUID()}`;
  const res = await api("/v1/trainer/claim", { method: "POST", key: t.trainer, json: { owner } });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Claim>();
}

/** Upload a (fine-tuned) artifact under the attempt's prefix and /complete with its manifest. */
async function complete(c: Claim, a: Artifact) {
  for (const [name, bytes] of Object.entries(a.files)) {
    await env.ARTIFACTS.put(`jobs/${t.tenantId}/${c.job.id}/attempt-1/artifacts/${name}`, bytes);
  }
  return api(`/v1/trainer/jobs/${c.job.id}/complete`, {
    method: "POST",
    key: t.trainer,
    json: { lease_token: c.lease.token, manifest: a.manifest },
  });
}

/** Cancel every queued job of the tenant, so the next claim gets the job a test just made. */
async function drain() {
  await env.DB.prepare("update training_jobs set status = 'cancelled' where tenant_id = ? and status = 'queued'")
    .bind(t.tenantId)
    .run();
}

describe("POST /v1/finetuning/jobs", () => {
  it("queues a finetune job: the base resolved, objective classify, default epochs, listed apart from pretraining", async () => {
    const job = await created({ eval_dataset: t.evalSet, hyperparameters: { lr: 3e-5, freeze_layers: 1 } });
    expect(job).toMatchObject({
      object: "finetuning.job",
      kind: "finetune",
      status: "queued",
      objective: "classify",
      base: "demo@1",
      initFrom: null,
      evalDataset: t.evalSet,
      hyperparameters: { lr: 3e-5, freeze_layers: 1, epochs: 3 },
    });
    const got = await (await api(`/v1/finetuning/jobs/${job.id}`, { key: t.secret })).json<Job>();
    expect(got).toMatchObject({ id: job.id, kind: "finetune", base: "demo@1" });
    const list = await (await api("/v1/finetuning/jobs", { key: t.secret })).json<{ data: Job[] }>();
    expect(list.data.map((j) => j.id)).toContain(job.id);
    expect(list.data.every((j) => j.kind === "finetune")).toBe(true);
    const pre = await (await api("/v1/pretraining/jobs", { key: t.secret })).json<{ data: Job[] }>();
    expect(pre.data.map((j) => j.id)).not.toContain(job.id);
    const p = await expectProblem(await api(`/v1/pretraining/jobs/${job.id}`, { key: t.secret }), 404);
    expect(p.detail).toContain(`/v1/finetuning/jobs/${job.id}`);
    const cancelled = await api(`/v1/finetuning/jobs/${job.id}/cancel`, { method: "POST", key: t.secret });
    expect((await cancelled.json<Job>()).status).toBe("cancelled");
  });

  it("refuses, as 422s naming the field: unknown base, base without weights, unlabeled set, another modality", async () => {
    const bad = async (extra: Record<string, unknown>, path: string, detail: RegExp) => {
      const p = await expectProblem(await create(body(extra)), 422);
      expect(p.errors?.[0]?.path, p.detail).toBe(path);
      expect(p.detail).toMatch(detail);
    };
    await bad({ base: "nope@1" }, "base", /nope/);
    await bad({ base: "plain" }, "base", /no PyTorch weights/);
    await bad({ dataset: t.corpus }, "dataset", /unlabeled.*purpose "probe"/);
    await bad({ hyperparameters: { max_tokens: 4096 } }, "hyperparameters.max_tokens", /at most 128/);
    await bad({ promote: "if_better" }, "promote", /eval_dataset/);
    // An image base for a text set.
    const image = encoderManifest("tiny-image-encoder");
    await importEncoder(t.secret, "tiny-image-encoder", "pics", (m) => ({ ...m, weights: "model.onnx" }));
    expect(image.modality).toBe("image");
    await bad({ base: "pics@1" }, "base", /image encoder.*holds text/);
    // Eval labels the training set lacks.
    const odd = await readySet(
      t.secret,
      jsonl([
        ["x", "animal"],
        ["y", "metal"],
      ]),
      { modality: "text", format: "jsonl", purpose: "probe" },
    );
    await bad({ eval_dataset: odd.id }, "eval_dataset", /"metal"/);
    // Fewer than 2 classes (the dataset check already refuses such probe sets; stats edited here).
    const one = await readySet(t.secret, TRAIN, { modality: "text", format: "jsonl", purpose: "probe" });
    await env.DB.prepare(
      "update datasets set stats = json_set(stats, '$.labels', json('{\"animal\": 6}')) where id = ?",
    )
      .bind(one.id)
      .run();
    await bad({ dataset: one.id }, "dataset", /1 class; a classifier needs at least 2/);
    // Pretraining hyperparameters are not fine-tune ones (400 from the schema, naming the key).
    const p = await expectProblem(await create(body({ hyperparameters: { mask_rate: 0.2 } })), 400);
    expect(JSON.stringify(p.errors)).toContain("mask_rate");
  });
});

describe("a time-series base", () => {
  it("takes the base's modality: series-only limits, no text hyperparameters, weights without a tokenizer", async () => {
    await importEncoder(t.secret, "tiny-series-encoder", "waves", (m) => ({ ...m, weights: "model.onnx" }));
    const series = (n: number) =>
      enc.encode(
        Array.from({ length: n }, (_, i) =>
          JSON.stringify({
            values: Array.from({ length: 16 }, (_, k) => Math.sin(k / (i + 1))),
            label: i % 2 ? "up" : "down",
          }),
        ).join("\n"),
      );
    const meta = { modality: "timeseries", format: "jsonl", purpose: "probe" as const };
    const small = await readySet(t.secret, series(3), meta);
    const ok = await readySet(t.secret, series(8), meta);
    const base = { model: "waves-cls", base: "waves@1" };
    let p = await expectProblem(await create({ ...base, dataset: small.id }), 422);
    expect(p.errors?.[0]?.path).toBe("dataset");
    expect(p.detail).toMatch(/3 examples.*at least 4/);
    p = await expectProblem(await create({ ...base, dataset: ok.id, hyperparameters: { max_tokens: 64 } }), 422);
    expect(p.errors?.[0]?.path).toBe("hyperparameters.max_tokens");
    p = await expectProblem(await create({ ...base, dataset: ok.id, eval_dataset: t.evalSet }), 422);
    expect(p.errors?.[0]?.path).toBe("eval_dataset");
    await drain();
    const res = await create({ ...base, dataset: ok.id });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json<Job>()).toMatchObject({ kind: "finetune", base: "waves@1", objective: "classify" });
    const c = await claim();
    expect(c.job).toMatchObject({ kind: "finetune", modality: "timeseries" });
    expect(Object.keys(c.init?.files ?? {})).toEqual(["model.onnx"]);
    await api(`/v1/finetuning/jobs/${c.job.id}/cancel`, { method: "POST", key: t.secret });
  });
});

describe("the trainer side of a fine-tune job", () => {
  it("claims kind finetune: the labeled set as corpus, the base as init, the hyperparameters as config", async () => {
    await drain();
    const job = await created({ eval_dataset: t.evalSet, hyperparameters: { epochs: 2 } });
    const c = await claim();
    expect(c.job).toMatchObject({ id: job.id, kind: "finetune", objective: "classify", modality: "text" });
    expect(c.job.config).toEqual({ epochs: 2 });
    expect(c.corpus.format).toBe("jsonl");
    expect(c.evalSet?.format).toBe("jsonl");
    expect(c.init?.ref).toBe("demo@1");
    expect(Object.keys(c.init?.files ?? {}).sort()).toEqual(["encoder.safetensors", "tokenizer.json"]);
    await api(`/v1/finetuning/jobs/${job.id}/cancel`, { method: "POST", key: t.secret });
  });

  it("/complete needs manifest.head with the set's labels and a graph that has the head output", async () => {
    await drain();
    const job = await created();
    const c = await claim();
    const expectRefused = async (a: Artifact, path: string) => {
      const p = await expectProblem(await complete(c, a), 422);
      expect(p.errors?.[0]?.path, p.detail).toBe(path);
      return p;
    };
    // No head at all (a plain encoder manifest, objective classify).
    const plainHead = await artifact({}, { objective: "classify" });
    let p = await expectRefused(plainHead, "manifest.head");
    expect(p.detail).toMatch(/logits/);
    // Labels that are not the dataset's.
    await expectRefused(await finetunedArtifact(["animal", "plant"]), "manifest.head.labels");
    // A head the graph does not have (the plain fixture graph under a head manifest).
    const noOutput = await artifact(
      {},
      {
        objective: "classify",
        head: { output: "logits", labels: LABELS, activation: "softmax" },
      },
    );
    p = await expectProblem(await complete(c, noOutput), 422);
    expect(p.errors?.[0]?.path).toMatch(/^variants\./);
    expect(p.detail).toMatch(/no output `logits`/);
    // Malformed heads are refused by the manifest schema (400 naming the field).
    const dup = await finetunedArtifact(LABELS, {
      head: { output: "logits", labels: ["animal", "animal", "plant"], activation: "softmax" },
    });
    p = await expectProblem(await complete(c, dup), 400);
    expect(p.errors?.[0]?.path).toBe("manifest.head.labels[1]");
    const same = await finetunedArtifact(LABELS, {
      head: { output: "embeddings", labels: LABELS, activation: "softmax" },
    });
    p = await expectProblem(await complete(c, same), 400);
    expect(p.errors?.[0]?.path).toBe("manifest.head.output");
    expect(await count("model_versions", "job_id = ?", job.id)).toBe(0);

    // The right artifact registers demo-cls@1 with finetuned_from lineage; the trainer's own
    // finetuned_from is replaced by the job's record.
    const res = await complete(c, await finetunedArtifact(LABELS, { finetuned_from: "something@9" }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json<Job>()).toMatchObject({ kind: "finetune", status: "succeeded", modelVersion: "demo-cls@1" });
    const version = await (await api("/v1/models/demo-cls/versions/1", { key: t.secret })).json<{
      manifest: Record<string, unknown>;
    }>();
    expect(version.manifest).toMatchObject({
      finetuned_from: "demo@1",
      head: { output: "logits", labels: LABELS, activation: "softmax" },
      lineage: { job: job.id, dataset: t.train, finetuned_from: "demo@1" },
    });
    expect(version.manifest.lineage).not.toHaveProperty("init_from");
    // The version view lifts both out of the manifest, as /info does.
    expect(version).toMatchObject({ finetunedFrom: "demo@1", initFrom: null, head: { labels: LABELS } });
    const info = await (await api("/v1/models/demo-cls@1/info", { key: t.secret })).json<Record<string, unknown>>();
    expect(info).toMatchObject({ finetuned_from: "demo@1", head: { labels: LABELS, output: "logits" } });
  });

  it("pretraining claims say kind pretrain and keep their config shape", async () => {
    await drain();
    const res = await api("/v1/pretraining/jobs", {
      method: "POST",
      key: t.secret,
      json: { dataset: t.corpus, objective: "mlm", model: "enc", hyperparameters: { steps: 5 } },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json<Job>()).toMatchObject({ object: "pretraining.job", kind: "pretrain", base: null });
    const c = await claim();
    expect(c.job.kind).toBe("pretrain");
    expect(c.job.config).toEqual({ objective: "mlm", preset: "tiny", modality: "text", steps: 5 });
  });
});
