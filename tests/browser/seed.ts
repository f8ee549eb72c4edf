// The platform the dashboard tests and `npm run dashboard:screenshots` look at: one real `wrangler dev`
// (which serves the built dashboard at /dashboard/), data seeded through the HTTP API like a user
// would — a corpus and a labeled set uploaded through presigned URLs, the fixture encoder imported,
// a tiny MLM job trained by the real trainer `serve` (so the loss and eval-probe curves are real),
// aliases moved, an evaluation run — and a second job left queued once the trainer has stopped.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { uploadDataset } from "../../cli/upload";
import { createSelfsupClient, type SelfsupClient, unwrap } from "../../client";
import { buildDashboard } from "../../scripts/build-dashboard.mjs";
import { writeFortunesJsonl } from "../../scripts/fortunes-jsonl";
import { localS3Credentials } from "../../scripts/local-s3.mjs";
import { registerFolder, startWranglerDev } from "../e2e/wrangler_dev";

const ROOT = path.join(import.meta.dirname, "../..");
const PYTHON = path.join(ROOT, "gpu-trainer/.venv/bin/python");

export type Seeded = {
  url: string;
  key: string;
  /** the trained pretraining job (succeeded, with loss and eval-probe curves) */
  jobId: string;
  /** a job left queued (no trainer runs any more): cancel it */
  queuedJobId: string;
  /** a model with versions 1 (imported) and 2 (trained), aliases latest and production */
  model: string;
  /** the labeled (probe) text set */
  datasetId: string;
  /** the pretraining corpus */
  corpusId: string;
  evaluationId: string;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `get` until `done`; throws with `why()` after `seconds`. */
async function until<T>(get: () => Promise<T>, done: (v: T) => boolean, seconds: number, why: (v: T) => string) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`seed: gave up after ${seconds}s: ${why(v)}`);
    await sleep(1000);
  }
}

async function readyDataset(client: SelfsupClient, id: string) {
  // /complete may answer at once (ready) or 202 and check on the work queue: poll either way.
  return until(
    () => unwrap(client.GET("/v1/datasets/{id}", { params: { path: { id } } })),
    (d) => d.status === "ready" || d.status === "invalid",
    300,
    (d) => `dataset ${id} is ${d.status}`,
  ).then((d) => {
    if (d.status !== "ready") throw new Error(`seed: dataset ${id} is ${d.status}: ${JSON.stringify(d)}`);
    return d;
  });
}

function startTrainer(url: string, key: string, work: string, log: string[]): ChildProcess {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} missing: run gpu-trainer/scripts/env.sh (make test does)`);
  const proc = spawn(PYTHON, ["-m", "selfsup_trainer", "serve"], {
    cwd: path.join(ROOT, "gpu-trainer"),
    env: {
      ...process.env,
      SELFSUP_API_URL: url,
      SELFSUP_TRAINER_KEY: key,
      SELFSUP_TRAINER_NAME: "dashboard-seed",
      SELFSUP_WORK_DIR: path.join(work, "trainer"),
      OMP_NUM_THREADS: "2",
      PYTHONUNBUFFERED: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout?.on("data", (d) => log.push(String(d)));
  proc.stderr?.on("data", (d) => log.push(String(d)));
  return proc;
}

/** Builds the dashboard, starts the platform and seeds it; `stop()` takes everything down. */
export async function startSeededPlatform(
  say: (line: string) => void = () => {},
): Promise<Seeded & { stop(): Promise<void> }> {
  await buildDashboard();
  const work = mkdtempSync(path.join(tmpdir(), "selfsup-dashboard-"));
  // A short lease: the trainer beats every 2 s, so the loss curve gets a point every 2 s.
  const server = await startWranglerDev({ ...localS3Credentials(), TRAINER_LEASE_SECONDS: "8" });
  const trainerLog: string[] = [];
  let trainer: ChildProcess | null = null;
  const stop = async () => {
    trainer?.kill("SIGKILL");
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    say(`wrangler dev on ${server.url}`);
    const client = createSelfsupClient({ baseUrl: server.url, apiKey: server.key });
    const trainerKey = (await unwrap(client.POST("/v1/keys", { body: { name: "trainer", scopes: ["trainer"] } })))
      .secret;
    const stateDir = path.join(work, "cli-state");
    const corpusUp = await uploadDataset(
      client,
      server.url,
      path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"),
      { name: "moby-dick", purpose: "pretrain", stateDir },
    );
    const fortunesFile = path.join(work, "fortunes.jsonl");
    writeFortunesJsonl(fortunesFile);
    const labeledUp = await uploadDataset(client, server.url, fortunesFile, {
      name: "fortunes",
      purpose: "probe",
      stateDir,
    });
    const corpus = await readyDataset(client, corpusUp.id);
    const labeled = await readyDataset(client, labeledUp.id);
    say(`datasets ${corpus.id} (corpus), ${labeled.id} (labeled)`);

    const model = "demo";
    await registerFolder(server, model, path.join(ROOT, "tests/fixtures/tiny-encoder"));
    trainer = startTrainer(server.url, trainerKey, work, trainerLog);
    const job = await unwrap(
      client.POST("/v1/pretraining/jobs", {
        body: {
          dataset: corpus.id,
          objective: "mlm",
          model,
          preset: "tiny",
          eval: { dataset: labeled.id },
          hyperparameters: { steps: 120, checkpoint_every: 30, batch_size: 16, max_tokens: 64, vocab_size: 1000 },
        },
      }),
    );
    say(`training ${job.id}`);
    const done = await until(
      () => unwrap(client.GET("/v1/pretraining/jobs/{id}", { params: { path: { id: job.id } } })),
      (j) => j.status === "succeeded" || j.status === "failed" || j.status === "cancelled",
      600,
      (j) => `job ${j.id} is ${j.status} at step ${j.progress.step}\n${trainerLog.join("")}`,
    );
    if (done.status !== "succeeded")
      throw new Error(`seed: job ${job.id} ${done.status}: ${done.error}\n${trainerLog.join("")}`);
    // Nothing may claim the queued job below.
    trainer.kill("SIGKILL");
    trainer = null;
    say(`job ${job.id} succeeded (${done.lossCurve.length} loss points, ${done.evalCurve.length} eval points)`);

    const alias = (version: number, reason?: string) =>
      unwrap(
        client.PUT("/v1/models/{name}/aliases/{alias}", {
          params: { path: { name: model, alias: "production" } },
          body: { version, ...(reason ? { reason } : {}) },
        }),
      );
    await alias(1);
    await alias(2, "trained on moby-dick");

    const created = await unwrap(
      client.POST("/v1/evaluations", {
        body: { models: [`${model}@1`, `${model}@2`], data: { dataset: labeled.id } },
      }),
    );
    // Synchronous (201, succeeded) or on the work queue (202, running): poll either way.
    const evaluation = await until(
      () => unwrap(client.GET("/v1/evaluations/{id}", { params: { path: { id: created.id } } })),
      (e) => (e as { status?: string }).status !== "running",
      300,
      (e) => `evaluation ${e.id} is still running`,
    );
    const status = (evaluation as { status?: string }).status;
    if (status && status !== "succeeded") throw new Error(`seed: evaluation ${evaluation.id} is ${status}`);
    say(`evaluation ${evaluation.id}`);

    const queued = await unwrap(
      client.POST("/v1/pretraining/jobs", {
        body: {
          dataset: corpus.id,
          objective: "simcse",
          model,
          preset: "tiny",
          hyperparameters: { steps: 2000, batch_size: 16, max_tokens: 64, vocab_size: 1000 },
        },
      }),
    );
    return {
      url: server.url,
      key: server.key,
      jobId: job.id,
      queuedJobId: queued.id,
      model,
      datasetId: labeled.id,
      corpusId: corpus.id,
      evaluationId: evaluation.id,
      stop,
    };
  } catch (e) {
    const log = server.log().slice(-4000);
    await stop();
    throw new Error(`seed failed: ${e instanceof Error ? e.message : String(e)}\nwrangler dev log (tail):\n${log}`, {
      cause: e,
    });
  }
}
