import { describe, expect, it } from "vitest";
import { importFixture } from "./fixture";
import { api, count, expectProblem, newTenant } from "./helpers";
import { afterAccepted } from "./poll";
import { fortunes } from "./probe_fixtures";

type Row = {
  name: string;
  features: string;
  linear: { accuracy: number; macro_f1: number; C: number };
  knn: { accuracy: number; macro_f1: number; k: number };
  delta_vs_baseline: { linear: number; knn: number } | null;
};
type Evaluation = {
  id: string;
  status: string;
  error: unknown;
  models: string[];
  labels: string[];
  n_train: number;
  n_test: number;
  table: Row[];
};

const set = fortunes();
const examples = (set.texts as string[]).map((input, i) => ({ input, label: set.labelNames[set.y[i] as number] }));

describe("evaluations", () => {
  it("tables each version's linear and kNN probe next to a TF-IDF baseline on the same split", async () => {
    const { secret, tenantId } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    await importFixture(secret, "tiny");
    const res = await api("/v1/evaluations", {
      method: "POST",
      key: secret,
      json: { models: ["tiny@1", "tiny@latest"], data: examples, test: { split: 0.25, seed: 1 } },
    });
    const e = await afterAccepted<Evaluation>(res, (id) => api(`/v1/evaluations/${id}`, { key: secret }));
    expect(e.status, JSON.stringify(e.error)).toBe("succeeded");
    // 22.5 of each class of 90 rounds to 23.
    expect(e).toMatchObject({ models: ["tiny@1", "tiny@2"], n_train: 268, n_test: 92 });
    expect(e.labels).toEqual(["computers", "food", "law", "love"]);
    expect(e.table.map((r) => [r.name, r.features])).toEqual([
      ["tiny@1", "embeddings"],
      ["tiny@2", "embeddings"],
      ["tfidf", "tfidf"],
    ]);
    const [a, b, base] = e.table as [Row, Row, Row];
    // The same weights give the same table row.
    expect(b.linear).toEqual(a.linear);
    expect(b.knn).toEqual(a.knn);
    expect(base.delta_vs_baseline).toBeNull();
    expect(a.delta_vs_baseline?.linear).toBeCloseTo(a.linear.accuracy - base.linear.accuracy, 12);
    expect(base.linear.accuracy).toBeGreaterThan(0.6);
    for (const r of e.table) expect(r.knn.k).toBe(20);

    expect(await count("evaluations", "tenant_id = ?", tenantId)).toBe(1);
    expect(await (await api(`/v1/evaluations/${e.id}`, { key: secret })).json()).toEqual(e);
    const list = await (await api("/v1/evaluations", { key: secret })).json<{ data: Evaluation[] }>();
    expect(list.data.map((x) => x.id)).toEqual([e.id]);
    await expectProblem(await api("/v1/evaluations/evl_nope", { key: secret }), 404);
  });

  it("refuses duplicate, unknown or too many models", async () => {
    const { secret } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const post = (json: unknown) => api("/v1/evaluations", { method: "POST", key: secret, json });
    let p = await expectProblem(await post({ models: ["tiny@1", "tiny"], data: examples }), 400);
    expect(p.detail).toMatch(/models\[1\]: tiny is tiny@1 again/);
    p = await expectProblem(await post({ models: ["ghost"], data: examples }), 404);
    expect(p.detail).toContain("ghost");
    p = await expectProblem(await post({ models: ["a", "b", "c", "d", "e"], data: examples }), 400);
    expect(p.errors?.[0]?.path).toBe("models");
  });
});
