// The product loop as a user drives it, with the `selfsup` CLI against a real `wrangler dev` and a
// real trainer: upload a corpus and a labeled set, train, see the version registered and `latest`
// moved, embed through the official `openai` SDK, probe and evaluate, move `production` forward
// and back, and cancel a second job mid-run.
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFortunesJsonl } from "../../scripts/fortunes-jsonl";
import { type Platform, ROOT, startPlatform } from "./platform";
import { registerFolder } from "./wrangler_dev";

let p: Platform;
const cli = (...args: string[]) => p.cli(...args);
const cliJson = <T>(...args: string[]) => p.cliJson<T>(...args);

beforeAll(async () => {
  p = await startPlatform("selfsup-loop-");
});

afterAll(async () => {
  await p?.stop();
});

type Job = { id: string; status: string; modelVersion: string | null; progress: { step: number; total: number } };

describe("the whole loop through the CLI", () => {
  it("upload -> train -> registered -> OpenAI SDK -> probe + evaluate -> alias moves -> cancel", async () => {
    // A labeled set of real quotes (Debian fortunes, 4 categories; see tests/fixtures/probe).
    const probeFile = path.join(p.work, "fortunes.jsonl");
    const fortunes = writeFortunesJsonl(probeFile);

    const corpus = await cliJson<{ id: string; status: string }>(
      "datasets",
      "upload",
      path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"),
      "--name",
      "moby",
    );
    const labeled = await cliJson<{ id: string; status: string; stats: { labels: Record<string, number> } }>(
      "datasets",
      "upload",
      probeFile,
      "--purpose",
      "probe",
    );
    expect(corpus.status).toBe("ready");
    expect(Object.keys(labeled.stats.labels)).toHaveLength(4);

    // An older version to compare with and to roll `production` back to.
    await registerFolder(p.server, "loop", path.join(ROOT, "tests/fixtures/tiny-encoder"));
    const job = await cliJson<Job>(
      "train",
      "--dataset",
      corpus.id,
      "--objective",
      "simcse",
      "--model",
      "loop",
      "--steps",
      "12",
      "--batch-size",
      "16",
      "--max-tokens",
      "64",
      "--vocab-size",
      "1000",
      "--watch",
    );
    expect(job, p.trainerLog.join("")).toMatchObject({
      status: "succeeded",
      modelVersion: "loop@2",
      progress: { step: 12, total: 12 },
    });
    const model = await cliJson<{ aliases: Record<string, number>; versions: number }>("models", "show", "loop");
    expect(model).toMatchObject({ versions: 2, aliases: { latest: 2 } });

    const openai = new OpenAI({ apiKey: p.server.key, baseURL: `${p.server.url}/v1`, maxRetries: 0 });
    const emb = await openai.embeddings.create({
      model: "loop",
      input: ["Call me Ishmael.", "It is a way I have of driving off the spleen."],
    });
    expect(emb.model).toBe("loop@2");
    expect(emb.data.map((d) => d.embedding.length)).toEqual([128, 128]);

    const probe = await cliJson<{
      model: string;
      n_test: number;
      metrics: { accuracy: number; confusion: { labels: string[]; matrix: number[][] } };
    }>("probe", "--model", "loop", "--dataset", labeled.id, "--kind", "knn");
    expect(probe.model).toBe("loop@2");
    expect(probe.metrics.confusion.labels).toEqual([...fortunes.labels].sort());
    expect(probe.metrics.confusion.matrix.flat().reduce((a, b) => a + b, 0)).toBe(probe.n_test);
    expect(probe.metrics.accuracy).toBeGreaterThan(0.25); // above chance for 4 balanced classes
    const human = await cli("probe", "--model", "loop@1", "--dataset", labeled.id);
    expect(human).toContain("true\\pred");
    expect(human).toMatch(/accuracy \d+\.\d%/);

    const evaluation = await cliJson<{ table: { name: string; linear: { accuracy: number } }[] }>(
      "evaluate",
      "--dataset",
      labeled.id,
      "loop@1",
      "loop@2",
    );
    expect(evaluation.table.map((r) => r.name)).toEqual(["loop@1", "loop@2", "tfidf"]);

    await cli("models", "alias", "loop", "production", "1");
    await cli("models", "alias", "loop", "production", "2", "--reason", "newer");
    await cli("models", "alias", "loop", "production", "1", "--reason", "roll back");
    const history = await cliJson<{ data: { from: number | null; to: number; reason: string | null }[] }>(
      "models",
      "history",
      "loop",
      "production",
    );
    expect(history.data.map((e) => [e.from, e.to, e.reason])).toEqual([
      [2, 1, "roll back"],
      [1, 2, "newer"],
      [null, 1, null],
    ]);

    // A long second job, cancelled once the trainer reports progress on it.
    const long = await cliJson<Job>(
      "train",
      "--dataset",
      corpus.id,
      "--objective",
      "mlm",
      "--model",
      "loop",
      "--steps",
      "5000",
      "--batch-size",
      "8",
      "--max-tokens",
      "32",
      "--vocab-size",
      "1000",
    );
    for (let i = 0; ; i++) {
      const j = await cliJson<Job>("jobs", "show", long.id);
      if (j.status === "running" && j.progress.step > 0) break;
      if (i > 240) throw new Error(`job never started: ${JSON.stringify(j)}\n${p.trainerLog.join("")}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await cli("jobs", "cancel", long.id);
    for (let i = 0; ; i++) {
      const j = await cliJson<Job>("jobs", "show", long.id);
      if (j.status === "cancelled") {
        expect(j.progress.step).toBeLessThan(5000);
        break;
      }
      if (i > 60) throw new Error(`job not cancelled: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect((await cliJson<{ versions: number }>("models", "show", "loop")).versions).toBe(2);
    // Errors print the API's problem detail and exit non-zero.
    await expect(cli("train", "--dataset", labeled.id, "--objective", "mlm", "--model", "x")).rejects.toThrow(
      /probe set/,
    );
  }, 600_000);
});
