// Fine-tuning end to end (issue 18) with real processes: `make dev`'s demo (the fixture encoder as
// `demo@1`) has no PyTorch weights, so a fine-tune job on it is refused naming `base`; a short MLM
// job trains `demo@2` (which has them); a fine-tune job turns `demo@2` plus a head into
// `demo-fortunes@1` on the committed fortunes quotes through the trainer's `serve` loop; the Worker
// classifies with the new version and still embeds with it. The trainer's committed fine-tuned
// fixture (tests/fixtures/tiny-finetuned) is served as Python onnxruntime computed it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFortunesJsonl } from "../../scripts/fortunes-jsonl";
import { cosine } from "../math";
import { type Platform, ROOT, startPlatform } from "./platform";
import { registerFolder } from "./wrangler_dev";

let p: Platform;

beforeAll(async () => {
  p = await startPlatform("selfsup-finetune-");
});

afterAll(async () => {
  await p?.stop();
});

type Job = {
  id: string;
  kind: string;
  status: string;
  error: string | null;
  modelVersion: string | null;
  base: string | null;
  metrics: Record<string, number> | null;
};

const QUOTES = [
  "A computer lets you make more mistakes faster than any invention in human history.",
  "There is no love sincerer than the love of food.",
  "The more laws and order are made prominent, the more thieves and robbers there will be.",
];

type Reference = {
  labels: string[];
  cases: {
    text: string;
    ids: number[];
    fp32: { probabilities: number[]; embedding: number[] };
    int8: { probabilities: number[]; embedding: number[] };
  }[];
};

const call = async (method: string, route: string, body?: unknown) => {
  const res = await fetch(`${p.server.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${p.server.key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};

describe("fine-tune with a real trainer, classify in the Worker", () => {
  it("serves the trainer's tiny-finetuned fixture as Python onnxruntime computed it (fp32 and int8)", async () => {
    const dir = path.join(ROOT, "tests/fixtures/tiny-finetuned");
    await registerFolder(p.server, "tinyft", dir);
    const ref = JSON.parse(readFileSync(path.join(dir, "reference_classifications.json"), "utf8")) as Reference;
    const texts = ref.cases.map((c) => c.text);
    for (const precision of ["fp32", "int8"] as const) {
      for (const input of [texts, ref.cases.map((c) => c.ids)]) {
        const res = await call("POST", "/v1/classifications", { model: "tinyft@1", input, precision, top_k: 4 });
        expect(res.status, JSON.stringify(res.json)).toBe(200);
        const data = res.json.data as { label: string; top: { label: string; score: number }[] }[];
        ref.cases.forEach((c, i) => {
          const want = c[precision].probabilities;
          const got = Object.fromEntries((data[i]?.top ?? []).map((t) => [t.label, t.score]));
          ref.labels.forEach((label, j) => {
            expect(Math.abs((got[label] ?? -1) - (want[j] as number)), `${precision} ${c.text} ${label}`).toBeLessThan(
              precision === "fp32" ? 1e-4 : 1e-2,
            );
          });
        });
      }
      const emb = await call("POST", "/v1/embeddings", { model: "tinyft@1", input: texts, precision });
      (emb.json.data as { embedding: number[] }[]).forEach((row, i) => {
        expect(cosine(row.embedding, ref.cases[i]?.[precision].embedding ?? [])).toBeGreaterThanOrEqual(0.9999);
      });
    }
  });

  it("refuses a base without weights, fine-tunes demo@2 on fortunes, serves classifications and embeddings", async () => {
    const waitFor = async (route: string, seconds: number): Promise<Job> => {
      for (const deadline = Date.now() + seconds * 1000; ; ) {
        const job = (await call("GET", route)).json as unknown as Job;
        if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
        if (Date.now() > deadline) throw new Error(`job still ${job.status}:\n${p.trainerLog.join("").slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    };

    const probeFile = path.join(p.work, "fortunes.jsonl");
    const { labels } = writeFortunesJsonl(probeFile);
    const labeled = await p.cliJson<{ id: string }>("datasets", "upload", probeFile, "--purpose", "probe");
    const corpus = await p.cliJson<{ id: string }>(
      "datasets",
      "upload",
      path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"),
    );
    await registerFolder(p.server, "demo", path.join(ROOT, "tests/fixtures/tiny-encoder"));

    // The fixture encoder has ONNX graphs only: nothing to fine-tune from.
    const refused = await call("POST", "/v1/finetuning/jobs", {
      model: "demo-fortunes",
      base: "demo@1",
      dataset: labeled.id,
    });
    expect(refused.status).toBe(422);
    expect((refused.json.errors as { path: string }[])[0]?.path).toBe("base");

    const pre = await call("POST", "/v1/pretraining/jobs", {
      dataset: corpus.id,
      objective: "mlm",
      model: "demo",
      preset: "tiny",
      hyperparameters: { steps: 20, batch_size: 16, max_tokens: 64, vocab_size: 2000, eval_every: 0 },
    });
    expect(pre.status, JSON.stringify(pre.json)).toBe(201);
    const trained = await waitFor(`/v1/pretraining/jobs/${pre.json.id}`, 280);
    expect(trained.status, `${trained.error}\n${p.trainerLog.join("").slice(-3000)}`).toBe("succeeded");
    expect(trained.modelVersion).toBe("demo@2");

    const created = await call("POST", "/v1/finetuning/jobs", {
      model: "demo-fortunes",
      base: "demo@2",
      dataset: labeled.id,
      hyperparameters: { epochs: 2, batch_size: 16, lr: 1e-4, head_lr: 3e-3, seed: 0 },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    expect(created.json).toMatchObject({ kind: "finetune", base: "demo@2", objective: "classify" });
    const job = await waitFor(`/v1/finetuning/jobs/${created.json.id}`, 400);
    expect(job.status, `${job.error}\n${p.trainerLog.join("").slice(-3000)}`).toBe("succeeded");
    expect(job.modelVersion).toBe("demo-fortunes@1");

    const version = (await call("GET", "/v1/models/demo-fortunes/versions/1")).json as {
      manifest: Record<string, unknown>;
    };
    expect(version.manifest).toMatchObject({
      objective: "classify",
      finetuned_from: "demo@2",
      head: { output: "logits", activation: "softmax" },
      lineage: { job: job.id, dataset: labeled.id, finetuned_from: "demo@2" },
    });
    expect([...((version.manifest.head as { labels: string[] }).labels ?? [])].sort()).toEqual([...labels].sort());
    expect(typeof (version.manifest.metrics as Record<string, unknown>)?.eval_accuracy).toBe("number");

    for (const precision of ["auto", "fp32"]) {
      const res = await call("POST", "/v1/classifications", { model: "demo-fortunes@1", input: QUOTES, precision });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      const data = res.json.data as { label: string; score: number; top: { label: string; score: number }[] }[];
      expect(data).toHaveLength(QUOTES.length);
      for (const d of data) {
        expect(labels).toContain(d.label);
        expect(d.top).toHaveLength(labels.length);
        expect(d.top.reduce((s, t) => s + t.score, 0)).toBeCloseTo(1, 4);
      }
    }
    const emb = await call("POST", "/v1/embeddings", { model: "demo-fortunes@1", input: QUOTES });
    expect(emb.status).toBe(200);
    expect((emb.json.data as unknown[]).length).toBe(QUOTES.length);
  });
});
