// GET /v1/datasets/{id}/sample: a few records of a probe set spread over the file, in the forms
// /v1/embeddings takes (the dashboard embeds them for an evaluation's 2-D map).
import { beforeAll, describe, expect, it } from "vitest";
import { readySet } from "./dataset_upload";
import italyProbe from "./fixtures/series/italy-power-probe.jsonl?raw";
import { api, expectProblem, newTenant } from "./helpers";
import { heldOutDigits, makeZip } from "./image_sets";
import { importEncoder } from "./modal_fixture";

type Sample = {
  object: string;
  dataset: string;
  read: number;
  data: { index: number; input: unknown; label: string | null }[];
};

const enc = new TextEncoder();
let key = "";
beforeAll(async () => {
  key = (await newTenant(["admin"])).secret;
});

const sample = async (id: string, n: number): Promise<Sample> => {
  const res = await api(`/v1/datasets/${id}/sample?n=${n}`, { key });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Sample>();
};

describe("GET /v1/datasets/{id}/sample", () => {
  it("spreads a text sample evenly over the file, each record's text and label intact", async () => {
    const lines = Array.from({ length: 50 }, (_, i) => ({
      text: `record number ${i}`,
      label: i % 3 === 0 ? "fizz" : "other",
    }));
    const set = await readySet(key, enc.encode(lines.map((l) => JSON.stringify(l)).join("\n")), {
      modality: "text",
      format: "jsonl",
      purpose: "probe",
    });
    const s = await sample(set.id, 10);
    expect(s).toMatchObject({ object: "list", dataset: set.id, read: 50 });
    expect(s.data.map((r) => r.index)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    for (const r of s.data) expect({ text: r.input, label: r.label }).toEqual(lines[r.index]);
    // Asking for more than there are returns every record once.
    expect((await sample(set.id, 400)).data).toHaveLength(50);
  });

  it("returns images as data URLs and 1-channel series as number[], both embeddable as they are", async () => {
    await importEncoder(key, "tiny-image-encoder", "digits-vit");
    await importEncoder(key, "tiny-series-encoder", "power");
    const images = await readySet(key, makeZip(heldOutDigits(3)), {
      modality: "image",
      format: "zip",
      purpose: "probe",
    });
    const img = await sample(images.id, 6);
    expect(img.read).toBe(30);
    expect(img.data).toHaveLength(6);
    for (const r of img.data) {
      expect(r.input).toMatch(/^data:image\/png;base64,iVBORw0KGgo/);
      expect(r.label).toMatch(/^\d$/);
    }
    const series = await readySet(key, enc.encode(italyProbe), {
      modality: "timeseries",
      format: "jsonl",
      purpose: "probe",
    });
    const ser = await sample(series.id, 4);
    const rows = italyProbe
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { values: number[]; label: string });
    expect(ser.read).toBe(rows.length);
    for (const r of ser.data) expect({ values: r.input, label: r.label }).toEqual(rows[r.index]);
    for (const [model, s] of [
      ["digits-vit", img],
      ["power", ser],
    ] as const) {
      const res = await api("/v1/embeddings", {
        method: "POST",
        key,
        json: { model, input: s.data.map((r) => r.input) },
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect((await res.json<{ data: unknown[] }>()).data).toHaveLength(s.data.length);
    }
  });

  it("answers problems naming the fix: pretraining sets, a bad n, an unknown id", async () => {
    const pre = await readySet(key, enc.encode("one line\nanother line\n"), { modality: "text", format: "txt" });
    const p = await expectProblem(await api(`/v1/datasets/${pre.id}/sample`, { key }), 422);
    expect(p.detail).toMatch(/probe/);
    await expectProblem(await api(`/v1/datasets/${pre.id}/sample?n=0`, { key }), 400);
    await expectProblem(await api(`/v1/datasets/${pre.id}/sample?n=5000`, { key }), 400);
    await expectProblem(await api("/v1/datasets/ds_nope/sample", { key }), 404);
  });
});
