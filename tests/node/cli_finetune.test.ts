// The CLI's fine-tuning commands against a fake API (a node http server recording what it is sent):
// `finetune` sends the contract's field names, `jobs` finds a fine-tune job although the pretraining
// routes 404 for it, `classify` prints labels with scores, `evaluate` prints the rows.
import { execFile } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseCommandLine } from "../../cli/args";

const ROOT = path.join(import.meta.dirname, "../..");
const run = promisify(execFile);

type Seen = { method: string; url: string; body: unknown };
let seen: Seen[] = [];
let server: Server;
let baseUrl = "";

const job = (id: string, kind: "pretrain" | "finetune", status: string, createdAt: string) => ({
  id,
  object: kind === "finetune" ? "finetuning.job" : "pretraining.job",
  kind,
  status,
  model: kind === "finetune" ? "demo-cls" : "demo",
  modelVersion: status === "succeeded" ? "demo-cls@1" : null,
  dataset: "ds_1",
  evalDataset: null,
  modality: "text",
  objective: kind === "finetune" ? "classify" : "mlm",
  preset: "tiny",
  hyperparameters: {},
  progress: { step: 30, total: 30, fraction: 1, etaSeconds: 0 },
  metrics: { loss: 0.5, eval_accuracy: 0.75 },
  lossCurve: [{ step: 30, loss: 0.5 }],
  evalCurve: [],
  events: [],
  initFrom: null,
  base: kind === "finetune" ? "demo@2" : null,
  promote: "always",
  promotion: null,
  attempts: 1,
  maxAttempts: 3,
  error: null,
  createdAt,
  startedAt: null,
  finishedAt: null,
});

const FT = job("job_ft", "finetune", "succeeded", "2026-12-06T03:00:00.000Z");
const PT = job("job_pt", "pretrain", "running", "2026-12-06T02:00:00.000Z");

const notFound = (detail: string) => ({
  status: 404,
  body: { type: "about:blank", title: "Not Found", status: 404, detail },
});

/** What the fake API answers: the pretraining routes 404 for the fine-tune job, as the real ones do. */
const EVALUATION_RUNNING = {
  object: "evaluation",
  status: "running",
  error: null,
  models: ["demo-cls@1"],
  n_train: 80,
  n_test: 20,
  labels: ["a", "b"],
  rows: [],
  table: [],
  baseline: null,
};

function answer(method: string, url: string, body: unknown): { status: number; body: unknown } {
  if (method === "GET" && url === "/v1/pretraining/jobs/job_ft") return notFound("`job_ft` is a fine-tune job");
  if (method === "GET" && url === "/v1/finetuning/jobs/job_ft") return { status: 200, body: FT };
  if (method === "GET" && url === "/v1/finetuning/jobs/job_none") return notFound("No fine-tune job `job_none`");
  if (method === "GET" && url === "/v1/pretraining/jobs/job_none") return notFound("No pretraining job `job_none`");
  if (method === "POST" && url === "/v1/finetuning/jobs/job_ft/cancel") return { status: 200, body: FT };
  if (method === "GET" && url === "/v1/pretraining/jobs") return { status: 200, body: { object: "list", data: [PT] } };
  if (method === "GET" && url === "/v1/finetuning/jobs") return { status: 200, body: { object: "list", data: [FT] } };
  if (method === "POST" && url === "/v1/finetuning/jobs") return { status: 201, body: { ...FT, status: "queued" } };
  if (method === "GET" && url === "/v1/models/demo-cls") {
    const version = (n: number, extra: Record<string, unknown>) => ({
      ref: `demo-cls@${n}`,
      dims: 128,
      source: "training",
      initFrom: null,
      aliases: n === 2 ? ["latest"] : [],
      createdAt: "2026-12-06T03:00:00.000Z",
      ...extra,
    });
    return {
      status: 200,
      body: {
        object: "list",
        data: [
          version(2, { finetunedFrom: "demo@2", head: { labels: ["a", "b", "c"], output: "logits" } }),
          version(1, { initFrom: "demo@1", finetunedFrom: null, head: null }),
        ],
      },
    };
  }
  if (method === "POST" && url === "/v1/classifications") {
    const inputs = (body as { input: string[] }).input;
    return {
      status: 200,
      body: {
        object: "list",
        model: "demo-cls@1",
        data: inputs.map((_, index) => ({
          object: "classification",
          index,
          label: "animal",
          score: 0.91,
          top: [
            { label: "animal", score: 0.91 },
            { label: "plant", score: 0.09 },
          ],
        })),
        usage: { prompt_tokens: 4, total_tokens: 4 },
      },
    };
  }
  if (method === "POST" && url === "/v1/evaluations") {
    // The API answers 202 and works on its queue; the CLI polls GET until it settles.
    const broken = (body as { models: string[] }).models.includes("broken");
    const progress = { phase: "embedding", model: "demo-cls@1", items_done: 0, items_total: 200 };
    return {
      status: 202,
      body: { ...EVALUATION_RUNNING, id: broken ? "evl_bad" : "evl_1", progress },
    };
  }
  if (method === "GET" && url === "/v1/evaluations/evl_bad") {
    const error = { title: "The work's input was refused", detail: "dataset ds_1 is deleted" };
    return { status: 200, body: { ...EVALUATION_RUNNING, id: "evl_bad", status: "failed", error } };
  }
  if (method === "GET" && url === "/v1/evaluations/evl_1") {
    const row = (model: string, kind: string, features: string, accuracy: number, delta: number | null) => ({
      model,
      kind,
      features,
      accuracy,
      macro_f1: accuracy - 0.05,
      confusion: null,
      delta_vs_baseline: delta,
      hyperparameters: {},
    });
    return {
      status: 200,
      body: {
        ...EVALUATION_RUNNING,
        id: "evl_1",
        status: "succeeded",
        progress: { phase: "done", model: null, items_done: 200, items_total: 200 },
        n_train: 80,
        n_test: 20,
        labels: ["a", "b"],
        rows: [
          row("demo-cls@1", "mlp", "embeddings", 0.7, 0.1),
          row("demo-cls@1", "finetuned", "head", 0.85, 0.25),
          row("tfidf", "linear", "tfidf", 0.6, null),
        ],
      },
    };
  }
  return notFound(`fake API: no ${method} ${url}`);
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", () => {
      const body = raw ? JSON.parse(raw) : null;
      seen.push({ method: req.method ?? "", url: req.url ?? "", body });
      const a = answer(req.method ?? "", req.url ?? "", body);
      res.writeHead(a.status, { "content-type": a.status >= 400 ? "application/problem+json" : "application/json" });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  baseUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
});

async function cli(args: string[]) {
  const env = {
    ...process.env,
    SELFSUP_API_URL: baseUrl,
    SELFSUP_API_KEY: "ss_abcdefgh_0123456789abcdefghijklmnopqrstuv",
  };
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, "cli/bin.mjs"), ...args], {
      cwd: ROOT,
      env,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe("finetune", () => {
  it("hyperparameter flags are the contract's fields in kebab case; a typo names the close one", () => {
    const p = parseCommandLine(["finetune", "--base", "demo@2", "--head-lr", "0.001", "--freeze-layers", "2"]);
    expect(p.values).toMatchObject({ base: "demo@2", "head-lr": "0.001", "freeze-layers": "2" });
    expect(parseCommandLine(["finetune", "--head-init", "zero"]).values).toMatchObject({ "head-init": "zero" });
    expect(() => parseCommandLine(["finetune", "--epoch", "3"])).toThrow(/did you mean --epochs\?/);
    expect(() => parseCommandLine(["finetune", "--objective", "mlm"])).toThrow(/`finetune` does not take --objective/);
  });

  it("sends model, base, datasets, numeric hyperparameters and promote", async () => {
    const r = await cli([
      "finetune",
      "--base",
      "demo@2",
      "--dataset",
      "ds_1",
      "--eval-dataset",
      "ds_2",
      "--model",
      "demo-cls",
      "--epochs",
      "2",
      "--head-lr",
      "0.001",
      "--layer-decay",
      "0.8",
      "--set",
      "seed=3",
      "--promote",
      "if_better",
      "--json",
    ]);
    expect(r.stderr).toContain("queued job_ft");
    expect(r.code).toBe(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: "POST", url: "/v1/finetuning/jobs" });
    expect(seen[0]?.body).toEqual({
      model: "demo-cls",
      base: "demo@2",
      dataset: "ds_1",
      eval_dataset: "ds_2",
      hyperparameters: { epochs: 2, head_lr: 0.001, layer_decay: 0.8, seed: 3 },
      promote: "if_better",
      max_attempts: 3,
    });
    expect(JSON.parse(r.stdout)).toMatchObject({ id: "job_ft", kind: "finetune" });
  });

  it("a hyperparameter that is not a number is refused before any request", async () => {
    const r = await cli(["finetune", "--base", "demo", "--dataset", "ds_1", "--model", "m", "--lr", "fast"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--lr fast: not a number");
    expect(seen).toHaveLength(0);
  });

  it("a string hyperparameter takes only the contract's choices", async () => {
    const r = await cli(["finetune", "--base", "demo", "--dataset", "ds_1", "--model", "m", "--head-init", "lp"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--head-init lp: use one of probe, zero");
    expect(seen).toHaveLength(0);
  });

  it("--watch follows the fine-tune job through its own route", async () => {
    const r = await cli(["finetune", "--base", "demo", "--dataset", "ds_1", "--model", "demo-cls", "--watch"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("fine-tuning");
    expect(r.stderr).toContain("eval acc 75.0%");
    expect(r.stdout).toContain("demo-cls@1");
    expect(seen.map((s) => `${s.method} ${s.url}`)).toContain("GET /v1/finetuning/jobs/job_ft");
  });
});

describe("jobs, for both kinds", () => {
  it("show finds a fine-tune job after the pretraining route's 404, and --watch keeps to its route", async () => {
    const r = await cli(["jobs", "show", "job_ft"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("finetune");
    expect(r.stdout).toContain("demo@2");
    expect(seen.map((s) => s.url)).toEqual(["/v1/pretraining/jobs/job_ft", "/v1/finetuning/jobs/job_ft"]);
    seen = [];
    const w = await cli(["jobs", "watch", "job_ft"]);
    expect(w.code).toBe(0);
    expect(seen.map((s) => s.url)).toEqual(["/v1/pretraining/jobs/job_ft", "/v1/finetuning/jobs/job_ft"]);
  });

  it("an id neither kind knows is the pretraining route's 404", async () => {
    const r = await cli(["jobs", "show", "job_none"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error 404");
    expect(r.stderr).toContain("No pretraining job `job_none`");
  });

  it("cancel calls the fine-tune job's cancel route", async () => {
    const r = await cli(["jobs", "cancel", "job_ft"]);
    expect(r.code).toBe(0);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toContain("POST /v1/finetuning/jobs/job_ft/cancel");
    expect(seen.map((s) => s.url)).not.toContain("/v1/pretraining/jobs/job_ft/cancel");
  });

  it("list shows both kinds, newest first", async () => {
    const r = await cli(["jobs", "list", "--json"]);
    expect(r.code).toBe(0);
    const data = (JSON.parse(r.stdout) as { data: { id: string }[] }).data.map((j) => j.id);
    expect(data).toEqual(["job_ft", "job_pt"]);
    const human = await cli(["jobs", "list"]);
    expect(human.stdout).toMatch(/job_ft\s+finetune/);
    expect(human.stdout).toMatch(/job_pt\s+pretrain/);
  });
});

describe("classify", () => {
  it("sends the texts and top_k, prints each input's label, score and top labels", async () => {
    const r = await cli(["classify", "--model", "demo-cls", "--top-k", "2", "a cat", "an oak"]);
    expect(r.code).toBe(0);
    expect(seen[0]).toMatchObject({
      method: "POST",
      url: "/v1/classifications",
      body: { model: "demo-cls", input: ["a cat", "an oak"], top_k: 2 },
    });
    expect(r.stdout).toMatch(/^0\tanimal\t91\.0%\ta cat$/m);
    expect(r.stdout).toContain("animal 91.0%, plant 9.0%");
    expect(r.stdout).toContain("model demo-cls@1");
  });

  it("without inputs, prints classify's usage", async () => {
    const r = await cli(["classify", "--model", "demo-cls"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("classify needs TEXT");
    expect(r.stderr).toContain("selfsup classify --model REF");
  });
});

describe("models show", () => {
  it("shows where each version came from and how many labels a fine-tuned one answers with", async () => {
    const r = await cli(["models", "show", "demo-cls"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/demo-cls@2\s+128\s+training\s+demo@2 \(fine-tuned\)\s+3\s+latest/);
    expect(r.stdout).toMatch(/demo-cls@1\s+128\s+training\s+demo@1\s+2026/);
  });
});

describe("probe and evaluate kinds", () => {
  it("evaluate --kinds sends the kinds and prints one row per (model, kind) with the delta", async () => {
    const r = await cli(["evaluate", "--dataset", "ds_1", "--kinds", "linear,mlp", "demo-cls@1"]);
    expect(r.code).toBe(0);
    expect(seen[0]?.body).toMatchObject({ models: ["demo-cls@1"], kinds: ["linear", "mlp"] });
    expect(seen[1]).toMatchObject({ method: "GET", url: "/v1/evaluations/evl_1" });
    expect(r.stderr).toMatch(/evaluate .*succeeded/);
    expect(r.stdout).toMatch(/demo-cls@1\s+finetuned\s+head\s+85\.0%\s+80\.0%\s+\+25\.0 pt/);
    expect(r.stdout).toMatch(/tfidf\s+linear\s+tfidf\s+60\.0%\s+55\.0%\s*$/m);
  });

  it("evaluate polls the queued evaluation and exits 1 with its error when it failed", async () => {
    const r = await cli(["evaluate", "--dataset", "ds_1", "broken"]);
    expect(seen.map((x) => `${x.method} ${x.url}`)).toEqual(["POST /v1/evaluations", "GET /v1/evaluations/evl_bad"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("evl_bad failed: The work's input was refused: dataset ds_1 is deleted");
  });

  it("an unknown kind is a usage error naming the kinds, before any request", async () => {
    const r = await cli(["evaluate", "--dataset", "ds_1", "--kinds", "linear,svm", "demo"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--kinds linear,svm: use linear, knn, mlp");
    const p = await cli(["probe", "--model", "demo", "--dataset", "ds_1", "--kind", "knn,mlp"]);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain("--kind takes one kind");
    expect(seen).toHaveLength(0);
  });
});
