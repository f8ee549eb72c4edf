// Evaluations and probes over datasets on the real work queue (issue 15): POST answers 202, the
// queue's consumer (the main worker's `queue` handler) embeds in chunks and fits, GET shows it.
import { describe, expect, it } from "vitest";
import { readySet } from "./dataset_upload";
import { importFixture } from "./fixture";
import { api, expectProblem, newTenant } from "./helpers";
import { settled } from "./poll";
import { fortunes } from "./probe_fixtures";

const set = fortunes();
const examples = (set.texts as string[]).map((input, i) => ({ input, label: set.labelNames[set.y[i] as number] }));

type Evaluation = {
  id: string;
  status: string;
  progress: { phase: string; items_done: number; items_total: number } | null;
  error: unknown;
  rows: { model: string; kind: string; confusion: unknown }[];
  table: { name: string }[];
  baseline: { kind: string } | null;
};

describe("evaluations on the work queue", () => {
  it("answers 202 running, then the consumer brings it to succeeded", async () => {
    const { secret } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const res = await api("/v1/evaluations", {
      method: "POST",
      key: secret,
      json: { models: ["tiny"], data: examples, test: { split: 0.25, seed: 1 } },
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const started = await res.json<Evaluation>();
    expect(started).toMatchObject({ status: "running", rows: [], table: [], baseline: null, error: null });
    expect(started.progress).toMatchObject({ phase: "embedding", items_done: 0, items_total: 360 });
    const e = await settled(() =>
      api(`/v1/evaluations/${started.id}`, { key: secret }).then((r) => r.json<Evaluation>()),
    );
    expect(e.status, JSON.stringify(e.error)).toBe("succeeded");
    expect(e.progress).toMatchObject({ phase: "done", items_done: 360, items_total: 360 });
    expect(e.table.map((r) => r.name)).toEqual(["tiny@1", "tfidf"]);
    expect(e.rows.every((r) => r.confusion !== null)).toBe(true);
  });
});

type Probe = {
  id: string;
  status: string;
  progress: { phase: string; items_done: number; items_total: number } | null;
  error: unknown;
  metrics: { accuracy: number } | null;
  n_train: number;
  n_test: number;
};

describe("probes over datasets on the work queue", () => {
  it("goes fitting → ready, refusing /predict with 409 until then", async () => {
    const { secret } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const jsonl = `${examples.map((e) => JSON.stringify({ text: e.input, label: e.label })).join("\n")}\n`;
    const ds = await readySet(secret, new TextEncoder().encode(jsonl), {
      modality: "text",
      format: "jsonl",
      purpose: "probe",
    });
    const res = await api("/v1/probes", {
      method: "POST",
      key: secret,
      json: { model: "tiny", kind: "linear", train: { dataset: ds.id } },
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const started = await res.json<Probe>();
    expect(started).toMatchObject({ status: "fitting", metrics: null, error: null, n_train: 288, n_test: 72 });
    expect(started.progress).toMatchObject({ phase: "embedding", items_done: 0, items_total: 360 });
    // The consumer needs several chunks; the first has not stored weights yet.
    const early = await expectProblem(
      await api(`/v1/probes/${started.id}/predict`, { method: "POST", key: secret, json: { input: "Food!" } }),
      409,
    );
    expect(early.detail).toMatch(/is fitting, not ready; poll GET \/v1\/probes\//);
    const p = await settled(() => api(`/v1/probes/${started.id}`, { key: secret }).then((r) => r.json<Probe>()));
    expect(p.status, JSON.stringify(p.error)).toBe("ready");
    expect(p.progress).toMatchObject({ phase: "done", items_done: 360 });
    expect(p.metrics?.accuracy).toBeGreaterThan(0.35);
    const pred = await api(`/v1/probes/${p.id}/predict`, { method: "POST", key: secret, json: { input: "Food!" } });
    expect(pred.status, await pred.clone().text()).toBe(200);
    const listed = await (await api("/v1/probes", { key: secret })).json<{ data: Probe[] }>();
    expect(listed.data.map((x) => [x.id, x.status])).toEqual([[p.id, "ready"]]);
  });
});
