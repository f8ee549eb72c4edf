// The job protocol end to end with real processes: `wrangler dev` (local D1, R2 and its S3 endpoint)
// and the Python trainer's `serve` loop. A real corpus goes up through presigned URLs, a tiny MLM
// job runs, the first trainer is SIGKILLed after its first checkpoint, a second one resumes from
// that checkpoint (not from step 0), the version is registered and serves embeddings.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadDataset } from "../../cli/upload";
import { createSelfsupClient, type SelfsupClient, unwrap } from "../../client";
import { localS3Credentials } from "../../scripts/local-s3.mjs";
import { type DevServer, startWranglerDev } from "./wrangler_dev";

const ROOT = path.join(import.meta.dirname, "../..");
const PYTHON = path.join(ROOT, "gpu-trainer/.venv/bin/python");
const CORPUS = path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt");

let server: DevServer;
let client: SelfsupClient;
let trainerKey: string;
const work = mkdtempSync(path.join(tmpdir(), "selfsup-trainers-"));
const trainers: { proc: ChildProcess; log: string[] }[] = [];
let dataset: Awaited<ReturnType<typeof uploadDataset>>;

function startTrainer(name: string) {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} missing: run gpu-trainer/scripts/env.sh (make test does)`);
  const proc = spawn(PYTHON, ["-m", "selfsup_trainer", "serve"], {
    cwd: path.join(ROOT, "gpu-trainer"),
    env: {
      ...process.env,
      SELFSUP_API_URL: server.url,
      SELFSUP_TRAINER_KEY: trainerKey,
      SELFSUP_TRAINER_NAME: name,
      SELFSUP_WORK_DIR: path.join(work, name),
      OMP_NUM_THREADS: "2",
      PYTHONUNBUFFERED: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const t = { proc, log: [] as string[] };
  proc.stdout?.on("data", (d) => t.log.push(String(d)));
  proc.stderr?.on("data", (d) => t.log.push(String(d)));
  trainers.push(t);
  return t;
}

type Job = Awaited<ReturnType<typeof getJob>>;
const getJob = (id: string) => unwrap(client.GET("/v1/pretraining/jobs/{id}", { params: { path: { id } } }));

async function waitFor(id: string, done: (j: Job) => boolean, seconds: number, logs: () => string) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const job = await getJob(id);
    if (done(job)) return job;
    if (Date.now() > deadline || job.status === "failed") {
      throw new Error(`job ${id} is ${job.status} (${job.error ?? ""}) after ${seconds}s\ntrainer logs:\n${logs()}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

beforeAll(async () => {
  // A short lease so the crash drill does not wait a minute for the dead trainer's lease.
  server = await startWranglerDev({ ...localS3Credentials(), TRAINER_LEASE_SECONDS: "8" });
  client = createSelfsupClient({ baseUrl: server.url, apiKey: server.key });
  trainerKey = (await unwrap(client.POST("/v1/keys", { body: { name: "trainers", scopes: ["trainer"] } }))).secret;
});

afterAll(async () => {
  for (const t of trainers) t.proc.kill("SIGKILL");
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("pretraining loop with real processes", () => {
  it("uploads, trains, survives a SIGKILLed trainer by resuming from its checkpoint, registers and serves", async () => {
    dataset = await uploadDataset(client, server.url, CORPUS, {
      name: "moby-dick",
      purpose: "pretrain",
      stateDir: path.join(work, "cli-state"),
    });
    expect(dataset.status).toBe("ready");
    expect((dataset.stats as { records: number }).records).toBeGreaterThan(1000);

    const job = await unwrap(
      client.POST("/v1/pretraining/jobs", {
        body: {
          dataset: dataset.id,
          objective: "mlm",
          model: "moby",
          preset: "tiny",
          hyperparameters: { steps: 30, checkpoint_every: 10, batch_size: 16, max_tokens: 64, vocab_size: 1000 },
          max_attempts: 3,
        },
      }),
    );

    const first = startTrainer("trainer-a");
    const checkpointed = await waitFor(
      job.id,
      (j) => j.events.some((e) => e.kind === "checkpoint"),
      240,
      () => first.log.join(""),
    );
    first.proc.kill("SIGKILL");
    const checkpointStep = Math.max(
      ...checkpointed.events.filter((e) => e.kind === "checkpoint").map((e) => e.step ?? 0),
    );
    expect(checkpointStep).toBeGreaterThanOrEqual(10);

    const second = startTrainer("trainer-b");
    const done = await waitFor(
      job.id,
      (j) => j.status === "succeeded",
      300,
      () => first.log.join("") + second.log.join(""),
    );
    expect(done.attempts).toBe(2);
    const resumed = done.events.find((e) => e.kind === "resumed");
    expect(resumed?.step).toBeGreaterThanOrEqual(checkpointStep);
    expect(second.log.join("")).toMatch(/resuming from .*step/);
    expect(done.modelVersion).toBe("moby@1");
    expect(done.lossCurve.length).toBeGreaterThan(0);
    expect(done.progress).toMatchObject({ step: 30, total: 30 });

    const version = await unwrap(
      client.GET("/v1/models/{name}/versions/{version}", { params: { path: { name: "moby", version: "latest" } } }),
    );
    expect(version.source).toBe("training");
    expect((version.manifest as { corpus: { sha256: string } }).corpus.sha256).toBe(dataset.sha256);

    const emb = await unwrap(
      client.POST("/v1/embeddings", { body: { model: "moby", input: ["Call me Ishmael.", "The whale!"] } }),
    );
    expect(emb.model).toBe("moby@1");
    const [a, b] = emb.data.map((d) => d.embedding as number[]);
    expect(a).toHaveLength(128);
    const norm = Math.hypot(...(a ?? []));
    expect(norm).toBeCloseTo(1, 4);
    expect(a).not.toEqual(b);
  }, 600_000);

  it("a SIGTERMed trainer checkpoints, hands the job back without using an attempt, and exits", async () => {
    for (const t of trainers) t.proc.kill("SIGKILL"); // only this test's trainers may claim its job
    const job = await unwrap(
      client.POST("/v1/pretraining/jobs", {
        body: {
          dataset: dataset.id,
          objective: "mlm",
          model: "moby",
          preset: "tiny",
          hyperparameters: { steps: 400, checkpoint_every: 100, batch_size: 8, max_tokens: 32, vocab_size: 1000 },
          max_attempts: 2,
        },
      }),
    );
    const first = startTrainer("trainer-c");
    await waitFor(
      job.id,
      (j) => j.progress.step >= 5,
      240,
      () => first.log.join(""),
    );
    const exited = new Promise<number | null>((r) => first.proc.once("exit", (code) => r(code)));
    first.proc.kill("SIGTERM");
    expect(await exited).toBe(0);
    const released = await getJob(job.id);
    expect(released.status, first.log.join("")).toBe("queued");
    expect(released.attempts).toBe(0);
    expect(released.events.map((e) => e.kind)).toContain("released");
    const saved = Math.max(...released.events.filter((e) => e.kind === "checkpoint").map((e) => e.step ?? 0));
    expect(saved).toBeGreaterThanOrEqual(5);

    const second = startTrainer("trainer-d");
    const resumed = await waitFor(
      job.id,
      (j) => j.events.some((e) => e.kind === "resumed"),
      240,
      () => second.log.join(""),
    );
    expect(resumed.events.find((e) => e.kind === "resumed")?.step).toBe(saved);
    expect(resumed.attempts).toBe(1);
    await unwrap(client.POST("/v1/pretraining/jobs/{id}/cancel", { params: { path: { id: job.id } } }));
    await waitFor(
      job.id,
      (j) => j.status === "cancelled",
      120,
      () => second.log.join(""),
    );
  }, 600_000);
});
