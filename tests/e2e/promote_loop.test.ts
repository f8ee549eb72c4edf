// `promote: "if_better"` with a real trainer, as `make dev`'s demo runs it: the fixture encoder is
// `demo@1`, a short tiny MLM job on Moby-Dick trains `demo@2` with the fortunes quotes as its eval
// set, and /complete scores both with the linear probe before deciding where `latest` points.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFortunesJsonl } from "../../scripts/fortunes-jsonl";
import { type Platform, type Promotion, ROOT, startPlatform } from "./platform";
import { registerFolder } from "./wrangler_dev";

let p: Platform;

beforeAll(async () => {
  p = await startPlatform("selfsup-promote-");
});

afterAll(async () => {
  await p?.stop();
});

type Job = {
  id: string;
  status: string;
  error: string | null;
  modelVersion: string | null;
  promotion: Promotion | null;
  events: { kind: string }[];
};

describe("promote if_better with a real trainer", () => {
  it("registers demo@2, scores demo@1 and demo@2 on the eval set, moves latest only if demo@2 is better", async () => {
    const probeFile = path.join(p.work, "fortunes.jsonl");
    writeFortunesJsonl(probeFile);
    const corpus = await p.cliJson<{ id: string }>(
      "datasets",
      "upload",
      path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"),
    );
    const labeled = await p.cliJson<{ id: string }>("datasets", "upload", probeFile, "--purpose", "probe");
    await registerFolder(p.server, "demo", path.join(ROOT, "tests/fixtures/tiny-encoder"));
    const call = (route: string, init: RequestInit = {}) =>
      fetch(`${p.server.url}${route}`, {
        ...init,
        headers: { authorization: `Bearer ${p.server.key}`, "content-type": "application/json" },
      });
    const created = await call("/v1/pretraining/jobs", {
      method: "POST",
      body: JSON.stringify({
        dataset: corpus.id,
        objective: "mlm",
        model: "demo",
        preset: "tiny",
        hyperparameters: { steps: 30, batch_size: 16, max_tokens: 64, vocab_size: 2000, eval_every: 0 },
        eval: { dataset: labeled.id },
        promote: "if_better",
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as Job;
    let job: Job;
    for (const deadline = Date.now() + 280_000; ; ) {
      job = (await (await call(`/v1/pretraining/jobs/${id}`)).json()) as Job;
      if (["succeeded", "failed", "cancelled"].includes(job.status)) break;
      if (Date.now() > deadline) throw new Error(`job still ${job.status}:\n${p.trainerLog.join("").slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    expect(job.status, `${job.error}\n${p.trainerLog.join("").slice(-3000)}`).toBe("succeeded");
    expect(job.modelVersion).toBe("demo@2");
    const promo = job.promotion;
    expect(promo?.candidate.ref).toBe("demo@2");
    expect(promo?.incumbent?.ref).toBe("demo@1");
    expect(typeof promo?.candidate.linear).toBe("number");
    expect(typeof promo?.incumbent?.linear).toBe("number");
    expect(promo?.promoted).toBe((promo?.candidate.linear as number) > (promo?.incumbent?.linear as number));
    const model = (await (await call("/v1/models/demo")).json()) as { aliases: Record<string, number> };
    expect(model.aliases.latest).toBe(promo?.promoted ? 2 : 1);
    expect(job.events.map((e) => e.kind)).toContain("promotion");
  });
});
