// Bring your own encoder, then make it yours: `python -m selfsup_trainer import` registers a local
// Hugging Face BERT folder through presigned uploads; the Worker serves what PyTorch computes; a job
// with `init_from` continues pretraining it on a corpus through the real trainer, and
// `promote: "if_better"` decides on the labeled set whether `latest` moves.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFortunesJsonl } from "../../scripts/fortunes-jsonl";
import { cosine } from "../math";
import { type Platform, type Promotion, ROOT, startPlatform } from "./platform";

const run = promisify(execFile);
const PYTHON = path.join(ROOT, "gpu-trainer/.venv/bin/python");
const TEXTS = ["Call me Ishmael.", "The whale is a mammal.", "Café naïve résumé — ünïcödé."];

let p: Platform;

beforeAll(async () => {
  p = await startPlatform("selfsup-continue-");
});

afterAll(async () => {
  await p?.stop();
});

type Job = {
  id: string;
  status: string;
  error: string | null;
  modelVersion: string | null;
  initFrom: string | null;
  promotion: Promotion | null;
};

const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${p.server.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${p.server.key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
};

describe("import a BERT folder, serve it, continue pretraining it", () => {
  it("python import -> Worker matches PyTorch -> init_from job -> promote if_better", async () => {
    const hf = path.join(p.work, "tiny-bert");
    const trainer = path.join(ROOT, "gpu-trainer");
    await run(PYTHON, [path.join(trainer, "scripts/tiny_bert.py"), hf, ...TEXTS], { cwd: trainer });
    const { stdout } = await run(
      PYTHON,
      ["-m", "selfsup_trainer", "import", "--from", hf, "--name", "tinybert", "--out", path.join(p.work, "art")],
      {
        cwd: trainer,
        env: { ...process.env, SELFSUP_API_URL: p.server.url, SELFSUP_API_KEY: p.server.key },
        timeout: 300_000,
      },
    );
    expect(stdout).toContain("registered tinybert@1");

    // fp32 through onnxruntime-web in workerd against PyTorch's vectors of the original folder.
    const ref = JSON.parse(readFileSync(path.join(hf, "reference.json"), "utf8")) as { embeddings: number[][] };
    const served = await api<{ data: { embedding: number[] }[] }>("POST", "/v1/embeddings", {
      model: "tinybert@1",
      input: TEXTS,
      precision: "fp32",
    });
    served.data.forEach((row, i) => {
      expect(cosine(row.embedding, ref.embeddings[i] as number[])).toBeGreaterThanOrEqual(0.9999);
    });
    const version = await api<{ manifest: Record<string, unknown> }>("GET", "/v1/models/tinybert/versions/1");
    expect(version.manifest).toMatchObject({ objective: "imported", weights: "encoder.safetensors", max_tokens: 64 });

    const probeFile = path.join(p.work, "fortunes.jsonl");
    writeFortunesJsonl(probeFile);
    const corpus = await p.cliJson<{ id: string }>(
      "datasets",
      "upload",
      path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"),
      "--name",
      "moby",
    );
    const labeled = await p.cliJson<{ id: string }>("datasets", "upload", probeFile, "--purpose", "probe");
    const created = await api<Job>("POST", "/v1/pretraining/jobs", {
      dataset: corpus.id,
      objective: "simcse",
      model: "tinybert",
      init_from: "tinybert@1",
      promote: "if_better",
      eval: { dataset: labeled.id },
      hyperparameters: { steps: 6, batch_size: 16 },
    });
    expect(created.initFrom).toBe("tinybert@1");
    let job = created;
    for (let i = 0; i < 240 && ["queued", "running"].includes(job.status); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      job = await api<Job>("GET", `/v1/pretraining/jobs/${created.id}`);
    }
    expect(job.status, `${job.error}\n${p.trainerLog.join("")}`).toBe("succeeded");
    expect(job.modelVersion).toBe("tinybert@2");
    expect(p.trainerLog.join("")).toContain("continuing from tinybert@1");

    const v2 = await api<{ manifest: Record<string, unknown> }>("GET", "/v1/models/tinybert/versions/2");
    expect(v2.manifest).toMatchObject({ init_from: "tinybert@1", architecture: { kind: "bert" } });
    const isotropy = v2.manifest.isotropy as { mean_pairwise_cosine: number };
    expect(isotropy.mean_pairwise_cosine).toBeLessThanOrEqual(0.6);

    // Both numbers are reported, and `latest` is where the comparison says it should be.
    const promo = job.promotion;
    expect(promo?.candidate.ref).toBe("tinybert@2");
    expect(promo?.incumbent?.ref).toBe("tinybert@1");
    expect(promo?.candidate.linear).toBeGreaterThan(0);
    expect(promo?.incumbent?.linear).toBeGreaterThan(0);
    const better = (promo?.candidate.linear ?? 0) > (promo?.incumbent?.linear ?? 0);
    expect(promo?.promoted).toBe(better);
    const model = await p.cliJson<{ aliases: Record<string, number> }>("models", "show", "tinybert");
    expect(model.aliases.latest).toBe(better ? 2 : 1);
  });
});
