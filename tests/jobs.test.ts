import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { completeAndWait } from "./dataset_upload";
import { fixtureBytes, fixtureManifest } from "./fixture";
import { addKey, api, count, expectProblem, newTenant } from "./helpers";

const enc = new TextEncoder();
// A stand-in checkpoint body: the API checks its size; the trainer that downloads it checks the digest.
const CKPT = { checkpoint_sha256: "a".repeat(64), checkpoint_bytes: 4 };
const CORPUS = enc.encode("Call me Ishmael.\nSome years ago, never mind how long precisely.\nIt is a way I have.\n");

async function readyDataset(key: string, purpose: "pretrain" | "probe" = "pretrain") {
  const bytes = purpose === "pretrain" ? CORPUS : enc.encode('{"text":"a","label":"x"}\n{"text":"b","label":"y"}\n');
  const format = purpose === "pretrain" ? "txt" : "jsonl";
  const d = await (
    await api("/v1/datasets", {
      method: "POST",
      key,
      json: { name: "c", modality: "text", purpose, format, bytes: bytes.byteLength, sha256: await sha256Hex(bytes) },
    })
  ).json<{ id: string }>();
  await api(`/v1/datasets/${d.id}/content`, {
    method: "PUT",
    key,
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  const { dataset } = await completeAndWait(key, d.id);
  if (dataset.status !== "ready") throw new Error(JSON.stringify(dataset));
  return d.id;
}

async function setup() {
  const t = await newTenant(["train", "embed"]);
  const trainer = await addKey(t.tenantId, ["trainer"]);
  const dataset = await readyDataset(t.secret);
  const job = await (
    await api("/v1/pretraining/jobs", {
      method: "POST",
      key: t.secret,
      json: { dataset, objective: "mlm", model: "enc", hyperparameters: { steps: 40, checkpoint_every: 10 } },
    })
  ).json<{ id: string; status: string }>();
  return { ...t, trainer: trainer.secret, dataset, job };
}

type Claim = {
  job: { id: string; config: Record<string, unknown>; attempt: number };
  lease: { token: string };
  corpus: { url: string; sha256: string };
  checkpoint: { step: number; url: string; sha256: string; bytes: number } | null;
};
const claim = (key: string, owner = "t1") => api("/v1/trainer/claim", { method: "POST", key, json: { owner } });
const beat = (key: string, id: string, body: Record<string, unknown>) =>
  api(`/v1/trainer/jobs/${id}/heartbeat`, { method: "POST", key, json: body });

async function uploadArtifacts(tenantId: string, jobId: string, attempt: number) {
  for (const name of Object.keys(fixtureManifest().files)) {
    await env.ARTIFACTS.put(`jobs/${tenantId}/${jobId}/attempt-${attempt}/artifacts/${name}`, fixtureBytes(name));
  }
}

describe("pretraining jobs and the trainer protocol", () => {
  it("runs queued -> claimed -> heartbeats -> complete: version registered, latest moved, curves kept", async () => {
    const s = await setup();
    expect(s.job.status).toBe("queued");
    const res = await claim(s.trainer);
    expect(res.status).toBe(200);
    const c = await res.json<Claim>();
    expect(c.job.id).toBe(s.job.id);
    expect(c.job.config).toMatchObject({ objective: "mlm", preset: "tiny", steps: 40 });
    expect(c.corpus.sha256).toBe(await sha256Hex(CORPUS));
    expect(new URL(c.corpus.url).searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(c.checkpoint).toBeNull();
    expect((await claim(s.trainer, "t2")).status).toBe(204);

    for (const [step, loss] of [
      [10, 7.5],
      [20, 6.1],
    ] as const) {
      const hb = await beat(s.trainer, s.job.id, {
        lease_token: c.lease.token,
        step,
        total_steps: 40,
        metrics: { loss, tokens_per_second: 1000 },
      });
      expect(await hb.json()).toMatchObject({ cancel: false });
    }
    const ckptBeat = { lease_token: c.lease.token, step: 20, total_steps: 40, checkpoint_step: 20, ...CKPT };
    await expectProblem(await beat(s.trainer, s.job.id, ckptBeat), 400);
    await env.ARTIFACTS.put(`jobs/${s.tenantId}/${s.job.id}/attempt-1/checkpoint-20.tar`, "ckpt");
    const noDigest = { lease_token: c.lease.token, step: 20, total_steps: 40, checkpoint_step: 20 };
    expect((await expectProblem(await beat(s.trainer, s.job.id, noDigest), 400)).errors?.[0]?.path).toBe(
      "checkpoint_sha256",
    );
    const wrongSize = { ...ckptBeat, checkpoint_bytes: 5 };
    expect((await expectProblem(await beat(s.trainer, s.job.id, wrongSize), 400)).errors?.[0]?.path).toBe(
      "checkpoint_bytes",
    );
    expect((await beat(s.trainer, s.job.id, ckptBeat)).status).toBe(200);

    const ups = await (
      await api(`/v1/trainer/jobs/${s.job.id}/uploads`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: c.lease.token, checkpoint_step: 30, files: ["model.onnx"] },
      })
    ).json<{ checkpoint: { url: string }; files: Record<string, { url: string }> }>();
    expect(new URL(ups.files["model.onnx"]?.url ?? "").pathname).toContain(
      `/jobs/${s.tenantId}/${s.job.id}/attempt-1/artifacts/model.onnx`,
    );
    expect(new URL(ups.checkpoint.url).pathname).toContain("/attempt-1/checkpoint-30.tar");

    await uploadArtifacts(s.tenantId, s.job.id, 1);
    const done = await api(`/v1/trainer/jobs/${s.job.id}/complete`, {
      method: "POST",
      key: s.trainer,
      json: { lease_token: c.lease.token, manifest: fixtureManifest() },
    });
    expect(done.status, await done.clone().text()).toBe(200);
    const job = await done.json<{
      status: string;
      modelVersion: string;
      lossCurve: { step: number; loss: number }[];
      events: { kind: string }[];
      progress: { step: number };
    }>();
    expect(job.status).toBe("succeeded");
    expect(job.modelVersion).toBe("enc@1");
    expect(job.lossCurve.map((p) => [p.step, p.loss])).toEqual([
      [10, 7.5],
      [20, 6.1],
    ]);
    expect(job.events.map((e) => e.kind)).toEqual(["queued", "claimed", "checkpoint", "succeeded"]);

    const v = await (await api("/v1/models/enc/versions/latest", { key: s.secret })).json<{
      version: number;
      source: string;
      jobId: string;
      manifest: { lineage: { job: string } };
    }>();
    expect(v).toMatchObject({ version: 1, source: "training", jobId: s.job.id });
    expect(v.manifest.lineage.job).toBe(s.job.id);
    // The lease is gone: a late heartbeat or a second complete is refused.
    await expectProblem(
      await beat(s.trainer, s.job.id, { lease_token: c.lease.token, step: 40, total_steps: 40 }),
      409,
    );
  });

  it("N concurrent claims on one job: exactly one wins", async () => {
    const s = await setup();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => claim(s.trainer, `r${i}`)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 204, 204, 204, 204, 204, 204, 204]);
  });

  it("an expired lease is requeued: another trainer claims it with the checkpoint, the old token gets 409", async () => {
    const s = await setup();
    const first = await (await claim(s.trainer, "a")).json<Claim>();
    await env.ARTIFACTS.put(`jobs/${s.tenantId}/${s.job.id}/attempt-1/checkpoint-10.tar`, "ckpt");
    await beat(s.trainer, s.job.id, {
      lease_token: first.lease.token,
      step: 10,
      total_steps: 40,
      checkpoint_step: 10,
      ...CKPT,
    });
    await env.DB.prepare("update training_jobs set lease_expires_at = 0 where id = ?").bind(s.job.id).run();
    const second = await (await claim(s.trainer, "b")).json<Claim>();
    expect(second.job.attempt).toBe(2);
    expect(second.checkpoint).toMatchObject({ step: 10, ...{ sha256: CKPT.checkpoint_sha256, bytes: 4 } });
    expect(new URL(second.checkpoint?.url ?? "").pathname).toContain("/attempt-1/checkpoint-10.tar");
    await expectProblem(
      await beat(s.trainer, s.job.id, { lease_token: first.lease.token, step: 11, total_steps: 40 }),
      409,
    );
    const before = await env.DB.prepare("select * from training_jobs where id = ?").bind(s.job.id).first();
    await expectProblem(
      await api(`/v1/trainer/jobs/${s.job.id}/complete`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: first.lease.token, manifest: fixtureManifest() },
      }),
      409,
    );
    expect(await env.DB.prepare("select * from training_jobs where id = ?").bind(s.job.id).first()).toEqual(before);
    expect(await count("model_versions", "tenant_id = ?", s.tenantId)).toBe(0);
  });

  it("fails a job whose lease expired on its last attempt", async () => {
    const s = await setup();
    await claim(s.trainer);
    await env.DB.prepare("update training_jobs set lease_expires_at = 0, max_attempts = 1 where id = ?")
      .bind(s.job.id)
      .run();
    expect((await claim(s.trainer)).status).toBe(204);
    const job = await (await api(`/v1/pretraining/jobs/${s.job.id}`, { key: s.secret })).json<{
      status: string;
      error: string;
    }>();
    expect(job.status).toBe("failed");
    expect(job.error).toContain("lease expired");
  });

  it("complete refuses artifacts whose sha256 differs and changes nothing", async () => {
    const s = await setup();
    const c = await (await claim(s.trainer)).json<Claim>();
    await uploadArtifacts(s.tenantId, s.job.id, 1);
    await env.ARTIFACTS.put(
      `jobs/${s.tenantId}/${s.job.id}/attempt-1/artifacts/model.onnx.data`,
      new Uint8Array(fixtureBytes("model.onnx.data").byteLength),
    );
    const p = await expectProblem(
      await api(`/v1/trainer/jobs/${s.job.id}/complete`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: c.lease.token, manifest: fixtureManifest() },
      }),
      422,
    );
    expect(p.detail).toContain("model.onnx.data");
    expect(await count("model_versions", "tenant_id = ?", s.tenantId)).toBe(0);
    expect(
      (await (await api(`/v1/pretraining/jobs/${s.job.id}`, { key: s.secret })).json<{ status: string }>()).status,
    ).toBe("running");
  });

  it("a job cancelled while its trainer exports registers nothing at /complete", async () => {
    const s = await setup();
    const c = await (await claim(s.trainer)).json<Claim>();
    await uploadArtifacts(s.tenantId, s.job.id, c.job.attempt);
    await api(`/v1/pretraining/jobs/${s.job.id}/cancel`, { method: "POST", key: s.secret });
    const p = await expectProblem(
      await api(`/v1/trainer/jobs/${s.job.id}/complete`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: c.lease.token, manifest: fixtureManifest() },
      }),
      409,
    );
    expect(p.detail).toContain("cancelled");
    expect(await count("model_versions", "tenant_id = ?", s.tenantId)).toBe(0);
    expect(await count("models", "tenant_id = ?", s.tenantId)).toBe(0);
  });

  it("a trainer that died after a cancel request: the next claim cancels the job instead of running it", async () => {
    const s = await setup();
    await claim(s.trainer, "dies");
    await api(`/v1/pretraining/jobs/${s.job.id}/cancel`, { method: "POST", key: s.secret });
    await env.DB.prepare("update training_jobs set lease_expires_at = 0 where id = ?").bind(s.job.id).run();
    expect((await claim(s.trainer, "next")).status).toBe(204);
    const job = await (await api(`/v1/pretraining/jobs/${s.job.id}`, { key: s.secret })).json<{
      status: string;
      events: { kind: string }[];
    }>();
    expect(job.status).toBe("cancelled");
    expect(job.events.map((e) => e.kind)).toContain("cancelled");
  });

  it("claims are idempotent per owner; release requeues without counting the attempt", async () => {
    const s = await setup();
    const a = await (await claim(s.trainer, "same")).json<Claim>();
    const b = await (await claim(s.trainer, "same")).json<Claim>();
    expect(b.lease.token).toBe(a.lease.token);
    expect(b.job.attempt).toBe(1);
    const released = await api(`/v1/trainer/jobs/${s.job.id}/fail`, {
      method: "POST",
      key: s.trainer,
      json: { lease_token: a.lease.token, error: "SIGTERM", release: true },
    });
    expect(await released.json<{ status: string; attempts: number }>()).toMatchObject({
      status: "queued",
      attempts: 0,
    });
    expect((await (await claim(s.trainer, "other")).json<Claim>()).job.attempt).toBe(1);
  });

  it("cancel: a queued job at once, a running one at its next heartbeat", async () => {
    const s = await setup();
    const running = await (await claim(s.trainer)).json<Claim>();
    const dataset2 = await readyDataset(s.secret);
    const queued = await (
      await api("/v1/pretraining/jobs", {
        method: "POST",
        key: s.secret,
        json: { dataset: dataset2, objective: "simcse", model: "enc2" },
      })
    ).json<{ id: string }>();
    expect(
      (
        await (
          await api(`/v1/pretraining/jobs/${queued.id}/cancel`, { method: "POST", key: s.secret })
        ).json<{ status: string }>()
      ).status,
    ).toBe("cancelled");
    expect(
      (
        await (
          await api(`/v1/pretraining/jobs/${s.job.id}/cancel`, { method: "POST", key: s.secret })
        ).json<{ status: string }>()
      ).status,
    ).toBe("running");
    expect(
      await (await beat(s.trainer, s.job.id, { lease_token: running.lease.token, step: 5, total_steps: 40 })).json(),
    ).toEqual({ cancel: true, leaseExpiresAt: null });
    expect(
      (await (await api(`/v1/pretraining/jobs/${s.job.id}`, { key: s.secret })).json<{ status: string }>()).status,
    ).toBe("cancelled");
    expect((await claim(s.trainer)).status).toBe(204);
  });

  it("fail: retryable requeues while attempts remain, otherwise the job fails", async () => {
    const s = await setup();
    const c1 = await (await claim(s.trainer)).json<Claim>();
    const r1 = await (
      await api(`/v1/trainer/jobs/${s.job.id}/fail`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: c1.lease.token, error: "CUDA OOM", retryable: true },
      })
    ).json<{ status: string }>();
    expect(r1.status).toBe("queued");
    const c2 = await (await claim(s.trainer)).json<Claim>();
    const r2 = await (
      await api(`/v1/trainer/jobs/${s.job.id}/fail`, {
        method: "POST",
        key: s.trainer,
        json: { lease_token: c2.lease.token, error: "loss is NaN at step 3" },
      })
    ).json<{ status: string; error: string }>();
    expect(r2).toMatchObject({ status: "failed", error: "loss is NaN at step 3" });
  });

  it("validates jobs: dataset state and purpose, objective vs modality, hyperparameter names and ranges", async () => {
    const s = await setup();
    const probe = await readyDataset(s.secret, "probe");
    const post = (json: Record<string, unknown>) =>
      api("/v1/pretraining/jobs", {
        method: "POST",
        key: s.secret,
        json: { dataset: s.dataset, objective: "mlm", model: "m", ...json },
      });
    // An image objective on a text set: a modality mismatch (422), not an unknown objective (400).
    expect((await expectProblem(await post({ objective: "mae" }), 422)).detail).toContain("mlm, simcse");
    expect((await expectProblem(await post({ hyperparameters: { lr: 5 } }), 400)).errors?.[0]?.path).toBe(
      "hyperparameters.lr",
    );
    expect((await expectProblem(await post({ hyperparameters: { mask_rate: 1.2 } }), 400)).errors?.[0]?.path).toBe(
      "hyperparameters.mask_rate",
    );
    expect(
      JSON.stringify(await expectProblem(await post({ hyperparameters: { learning_rate: 1e-3 } }), 400)),
    ).toContain("learning_rate");
    expect((await expectProblem(await post({ dataset: probe }), 400)).detail).toContain("probe set");
    expect((await expectProblem(await post({ eval: { dataset: s.dataset } }), 400)).errors?.[0]?.path).toBe(
      "eval.dataset",
    );
    await expectProblem(await post({ dataset: "ds_nope" }), 404);
    // A dataset a queued job uses cannot be deleted.
    await expectProblem(await api(`/v1/datasets/${s.dataset}`, { method: "DELETE", key: s.secret }), 409);
    // Trainer routes need the trainer scope, and a trainer key cannot create jobs.
    await expectProblem(await claim(s.secret), 403);
    await expectProblem(await api("/v1/pretraining/jobs", { method: "POST", key: s.trainer, json: {} }), 403);
  });
});
