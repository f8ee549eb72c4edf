// POST /v1/classifications (issue 18): a fine-tuned version's head served in the Worker through the
// embeddings path. The version is the tiny text encoder with a linear head whose logit j is a
// multiple of embedding component j (tests/finetune_fixture.ts), so the answer can be checked
// against /v1/embeddings on the same input.
import { beforeAll, describe, expect, it } from "vitest";
import { artifact, finetunedArtifact, importArtifact, modalFinetuned } from "./finetune_fixture";
import { api, expectProblem, newTenant } from "./helpers";
import { imageFixture, toBase64 } from "./modal_fixture";

const LABELS = ["animal", "plant", "stone"];
const TEXTS = ["the whale sang in the deep", "moss covered the log", "granite is hard", "hello"];

type Answer = {
  object: string;
  model: string;
  data: { object: string; index: number; label: string; score: number; top: { label: string; score: number }[] }[];
  usage: { prompt_tokens: number; total_tokens: number };
};

let key: string;

beforeAll(async () => {
  key = (await newTenant(["admin"])).secret;
  await importArtifact(key, "base", await artifact());
  await importArtifact(key, "cls", await finetunedArtifact(LABELS, { finetuned_from: "base@1" }));
  await importArtifact(key, "pics", await modalFinetuned("tiny-image-encoder", LABELS));
  await importArtifact(key, "waves", await modalFinetuned("tiny-series-encoder", LABELS));
}, 120_000);

/** Labels ranked by embedding components 0..K-1 (the fixture head's logits, up to a positive scale). */
async function rankedByEmbedding(model: string, input: unknown, precision: string): Promise<string[][]> {
  const res = await api("/v1/embeddings", { method: "POST", key, json: { model, input, precision } });
  expect(res.status, await res.clone().text()).toBe(200);
  const { data } = await res.json<{ data: { embedding: number[] }[] }>();
  return data.map((d) =>
    LABELS.map((l, j) => ({ l, v: d.embedding[j] as number }))
      .sort((x, y) => y.v - x.v)
      .map((x) => x.l),
  );
}

const classify = (json: Record<string, unknown>) => api("/v1/classifications", { method: "POST", key, json });

async function answer(json: Record<string, unknown>): Promise<Answer> {
  const res = await classify({ model: "cls@1", ...json });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Answer>();
}

describe("POST /v1/classifications", () => {
  it("answers labels with softmax probabilities that follow the head's logits", async () => {
    const a = await answer({ input: TEXTS, precision: "fp32" });
    expect(a).toMatchObject({ object: "list", model: "cls@1" });
    expect(a.usage.prompt_tokens).toBeGreaterThan(0);
    expect(a.usage.total_tokens).toBe(a.usage.prompt_tokens);
    const emb = await (
      await api("/v1/embeddings", { method: "POST", key, json: { model: "cls@1", input: TEXTS, precision: "fp32" } })
    ).json<{ data: { embedding: number[] }[] }>();
    let proportional = 0;
    a.data.forEach((d, i) => {
      expect(d).toMatchObject({ object: "classification", index: i });
      expect(d.top).toHaveLength(LABELS.length);
      expect(d.top.map((t) => t.label).sort()).toEqual([...LABELS].sort());
      expect(d.top.reduce((s, t) => s + t.score, 0)).toBeCloseTo(1, 5);
      expect(d.label).toBe(d.top[0]?.label);
      expect(d.score).toBe(d.top[0]?.score);
      for (let j = 1; j < d.top.length; j++) expect(d.top[j - 1]?.score).toBeGreaterThanOrEqual(d.top[j]?.score ?? 0);
      // logit j = 10 · raw embedding component j, and the served embedding is raw / |raw|, so the
      // ranking is that of components 0..2, and log-probability gaps are proportional to theirs.
      const e = (emb.data[i]?.embedding ?? []).slice(0, LABELS.length);
      const byComponent = LABELS.map((l, j) => ({ l, v: e[j] as number })).sort((x, y) => y.v - x.v);
      expect(d.top.map((t) => t.label)).toEqual(byComponent.map((x) => x.l));
      const [p0, p1, p2] = d.top.map((t) => t.score) as [number, number, number];
      const [v0, v1, v2] = byComponent.map((x) => x.v) as [number, number, number];
      if (p2 > 1e-30 && v0 - v2 > 1e-4) {
        expect(Math.log(p0 / p1) / Math.log(p0 / p2)).toBeCloseTo((v0 - v1) / (v0 - v2), 2);
        proportional++;
      }
    });
    expect(proportional).toBeGreaterThan(0);
  });

  it("top_k: default 5 capped at the label count, or as asked", async () => {
    expect((await answer({ input: "hello", top_k: 1 })).data[0]?.top).toHaveLength(1);
    expect((await answer({ input: "hello", top_k: 50 })).data[0]?.top).toHaveLength(3);
    expect((await answer({ input: "hello" })).data[0]?.top).toHaveLength(3);
    const p = await expectProblem(await classify({ model: "cls@1", input: "hello", top_k: 0 }), 400);
    expect(JSON.stringify(p.errors)).toContain("top_k");
  });

  it("is the same answer for an input alone or in a batch, at int8 too (decision 0004)", async () => {
    for (const precision of ["int8", "fp32"]) {
      const together = await answer({ input: TEXTS, precision, top_k: 3 });
      for (const [i, text] of TEXTS.entries()) {
        const alone = await answer({ input: text, precision, top_k: 3 });
        const a = alone.data[0]?.top ?? [];
        const b = together.data[i]?.top ?? [];
        expect(a.map((x) => x.label)).toEqual(b.map((x) => x.label));
        for (const [j, x] of a.entries()) expect(x.score).toBeCloseTo(b[j]?.score ?? -1, 5);
      }
    }
  });

  it("takes token ids like /v1/embeddings, and refuses what embeddings refuses", async () => {
    const ids = await answer({ input: [[2, 100, 200, 3]] });
    expect(ids.data).toHaveLength(1);
    let p = await expectProblem(await classify({ model: "cls@1", input: [] }), 400);
    expect(p.errors?.[0]?.path).toBe("input");
    p = await expectProblem(await classify({ model: "cls@1", input: "data:image/png;base64,iVBORw0KGgo=" }), 400);
    expect(p.detail).toMatch(/text model/);
    p = await expectProblem(await classify({ model: "cls@1", input: "x", precision: "fp16" }), 400);
    expect(JSON.stringify(p.errors)).toContain("precision");
  });

  it("is a 422 naming model for a version without a head; the fine-tuned version also serves embeddings", async () => {
    const p = await expectProblem(await classify({ model: "base@1", input: "hello" }), 422);
    expect(p.errors?.[0]?.path).toBe("model");
    expect(p.detail).toMatch(/base@1 has no classification head.*POST \/v1\/finetuning\/jobs/);
    const res = await api("/v1/embeddings", { method: "POST", key, json: { model: "cls@1", input: "hello" } });
    expect(res.status).toBe(200);
    expect((await res.json<{ data: { embedding: number[] }[] }>()).data[0]?.embedding).toHaveLength(128);
  });
});

describe("image and time-series versions", () => {
  const IMAGES = ["grey.png", "bilevel.png", "grey.jpg"].map((f) => toBase64(imageFixture(f)));
  const SERIES = [
    Array.from({ length: 24 }, (_, t) => Math.sin(t / 3)),
    Array.from({ length: 10 }, (_, t) => t * 0.5 - 2),
    Array.from({ length: 30 }, (_, t) => (t % 5) - 2),
  ];
  for (const [model, input] of [
    ["pics", IMAGES],
    ["waves", SERIES],
  ] as const) {
    it(`${model}: the same input forms as /v1/embeddings, ranked by the head, alone = in a batch`, async () => {
      for (const precision of ["fp32", "int8"]) {
        const a = await answer({ model: `${model}@1`, input, precision });
        expect(a.model).toBe(`${model}@1`);
        expect(a.usage.prompt_tokens).toBeGreaterThan(0);
        const ranked = await rankedByEmbedding(`${model}@1`, input, precision);
        a.data.forEach((d, i) => {
          expect(d.top.reduce((s, t) => s + t.score, 0)).toBeCloseTo(1, 5);
          expect(d.top.map((t) => t.label)).toEqual(ranked[i]);
        });
        const alone = await answer({ model: `${model}@1`, input: [input[1]], precision });
        expect(alone.data[0]?.top.map((t) => t.score)[0]).toBeCloseTo(a.data[1]?.top[0]?.score ?? -1, 5);
      }
    });
  }
});

describe("imports of fine-tuned versions", () => {
  it("refuse a head whose label count is not the graph's logit count (422 naming head.labels)", async () => {
    const a = await finetunedArtifact(LABELS);
    a.manifest.head = { output: "logits", labels: [...LABELS, "metal"], activation: "softmax" };
    const form = new FormData();
    form.append("manifest", JSON.stringify(a.manifest));
    for (const [name, bytes] of Object.entries(a.files)) form.append("files", new File([bytes], name));
    const p = await expectProblem(await api("/v1/models/odd/versions", { method: "POST", key, body: form }), 422);
    expect(p.errors?.[0]).toMatchObject({ path: "head.labels" });
    expect(p.errors?.[0]?.message).toMatch(/4 labels.*3 logits/);
  });
});
