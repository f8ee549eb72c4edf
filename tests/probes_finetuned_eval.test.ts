// An evaluation that compares a fine-tuned version's own head with probes on frozen embeddings
// (issue 18). The fine-tuned fixture is the tiny text encoder plus a linear head whose logit j is
// 10 × embedding component j (tests/finetune_fixture.ts): its embeddings are the base encoder's, so
// its probes must equal the base's, and its head's answers must be /v1/classifications'.
import { describe, expect, it } from "vitest";
import { finetunedArtifact, importArtifact } from "./finetune_fixture";
import { importFixture } from "./fixture";
import { api, expectProblem, newTenant } from "./helpers";
import { afterAccepted } from "./poll";
import { fortunes } from "./probe_fixtures";

type Row = {
  model: string;
  features: string;
  kind: string;
  accuracy: number;
  macro_f1: number;
  confusion: { labels: string[]; matrix: number[][] } | null;
  delta_vs_baseline: number | null;
};
type Evaluation = {
  id: string;
  status: string;
  error: unknown;
  models: string[];
  n_test: number;
  rows: Row[];
  table: { name: string; finetuned?: { accuracy: number }; delta_vs_baseline: Record<string, number> | null }[];
};

const set = fortunes();
const examples = (set.texts as string[]).map((input, i) => ({ input, label: set.labelNames[set.y[i] as number] }));
const train = examples.filter((_, i) => i % 4 !== 0);
const test = examples.filter((_, i) => i % 4 === 0);

describe("evaluations with fine-tuned versions", () => {
  it("scores a fine-tuned version by its head next to its probes and the base's", async () => {
    const { secret } = await newTenant(["train", "probe", "embed"]);
    await importFixture(secret, "tiny");
    await importArtifact(secret, "cls", await finetunedArtifact(set.labelNames, { finetuned_from: "tiny@1" }));
    const res = await api("/v1/evaluations", {
      method: "POST",
      key: secret,
      json: { models: ["tiny@1", "cls@1"], data: train, test },
    });
    const e = await afterAccepted<Evaluation>(res, (id) => api(`/v1/evaluations/${id}`, { key: secret }));
    expect(e.status, JSON.stringify(e.error)).toBe("succeeded");
    expect(e.rows.map((r) => [r.model, r.features, r.kind])).toEqual([
      ["tiny@1", "embeddings", "linear"],
      ["tiny@1", "embeddings", "knn"],
      ["cls@1", "embeddings", "linear"],
      ["cls@1", "embeddings", "knn"],
      ["cls@1", "head", "finetuned"],
      ["tfidf", "tfidf", "linear"],
      ["tfidf", "tfidf", "knn"],
    ]);
    const [baseLinear, , clsLinear, , head, tfidf] = e.rows as Row[] as [Row, Row, Row, Row, Row, Row];
    // Same embeddings, same probe.
    expect(clsLinear.accuracy).toBe(baseLinear.accuracy);
    expect(head.confusion?.matrix.flat().reduce((a, b) => a + b, 0)).toBe(90);
    expect(head.delta_vs_baseline).toBeCloseTo(head.accuracy - tfidf.accuracy, 12);
    expect(e.table[1]?.finetuned?.accuracy).toBe(head.accuracy);
    expect(e.table[1]?.delta_vs_baseline?.finetuned).toBeCloseTo(head.accuracy - tfidf.accuracy, 12);

    // The head's answers are /v1/classifications' on the same inputs.
    const cls = await api("/v1/classifications", {
      method: "POST",
      key: secret,
      json: { model: "cls@1", input: test.map((x) => x.input) },
    });
    expect(cls.status, await cls.clone().text()).toBe(200);
    const answers = (await cls.json<{ data: { label: string }[] }>()).data;
    const right = answers.filter((a, i) => a.label === test[i]?.label).length;
    expect(head.accuracy).toBeCloseTo(right / test.length, 12);
  });

  it("refuses a fine-tuned version whose head lacks labels of the set, naming the model", async () => {
    const { secret } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    await importArtifact(secret, "pets", await finetunedArtifact(["cat", "dog"]));
    const p = await expectProblem(
      await api("/v1/evaluations", { method: "POST", key: secret, json: { models: ["tiny", "pets"], data: examples } }),
      422,
    );
    expect(p.errors?.[0]?.path).toBe("models[1]");
    expect(p.detail).toMatch(/pets@1's head predicts \["cat","dog"\], not the set's "computers"/);
  });
});
