// The dashboard's Datasets, Evaluations and Playground pages in Chromium against the seeded platform
// (global_setup: a labeled text set, the fixture encoder and its trained version, a finished evaluation):
// the charts' marks counted in the SVG, the 2-D map's points, a 3×3 similarity matrix from typed texts,
// layout at desktop and phone widths, and a clean console.

import { createHash } from "node:crypto";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { type DevServer, registerFolder } from "../e2e/wrangler_dev";
import { expectNoHorizontalScroll, openClosedAfterEach, openPage } from "./browser";

const seed = inject("seed");
const FIXTURES = path.join(import.meta.dirname, "../fixtures");
const open = openClosedAfterEach();

/** The API's own answer, to compare what the page draws with what it was given. */
async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${seed.url}${path}`, { headers: { authorization: `Bearer ${seed.key}` } });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

type Evaluation = {
  labels: string[];
  rows: { model: string; kind: string; confusion: { labels: string[]; matrix: number[][] } | null }[];
};

describe("evaluations", () => {
  it("draws accuracy bars, a confusion heat map with counts, per-class scores and the 2-D map", async () => {
    const e = await api<Evaluation>(`/v1/evaluations/${seed.evaluationId}`);
    const K = e.labels.length;
    expect(K).toBeGreaterThan(1);
    const { page, consoleErrors } = await open(`/evaluations/${seed.evaluationId}`);
    await page.locator('[data-chart="confusion"] svg').waitFor();
    // Every row's bar (each model × probe kind, the baseline's too).
    expect(await page.locator('[data-chart="accuracy"] svg [aria-label="bar"] rect').count()).toBe(e.rows.length);
    const cells = page.locator('[data-chart="confusion"] svg [aria-label="cell"] rect');
    expect(await cells.count()).toBeGreaterThanOrEqual(K * K);
    // The counts are written in the cells and add up to the chosen row's matrix.
    const texts = await page.locator('[data-chart="confusion"] svg [aria-label="text"] text').allTextContents();
    expect(texts).toHaveLength(K * K);
    const total = texts.reduce((s, t) => s + Number(t), 0);
    const sums = e.rows.filter((r) => r.confusion).map((r) => r.confusion?.matrix.flat().reduce((a, b) => a + b, 0));
    expect(sums).toContain(total);
    // Per-class precision/recall/F1, one line per label.
    const perClass = page.getByRole("table").filter({ hasText: "Precision" });
    expect(await perClass.locator("tbody tr").count()).toBe(K);
    // Choosing another row redraws the heat map for it.
    const options = await page.locator("#eval-row option").count();
    expect(options).toBe(e.rows.filter((r) => r.confusion).length);
    await page.locator("#eval-row").selectOption({ index: options - 1 });
    await expect.poll(() => cells.count()).toBeGreaterThanOrEqual(K * K);
    // The 2-D map: the probe set's sample embedded, projected and coloured by label, with a legend.
    const dots = page.locator('[data-chart="map"] svg [aria-label="dot"] circle');
    await dots.first().waitFor({ timeout: 90_000 });
    expect(await dots.count()).toBeGreaterThanOrEqual(10);
    const fills = new Set(await dots.evaluateAll((cs) => cs.map((c) => c.getAttribute("fill"))));
    expect(fills.size).toBe(K);
    expect(await page.locator('[data-chart="map"]').textContent()).toContain(e.labels[0]);
    expect(consoleErrors).toEqual([]);
  });

  it("lists the seeded evaluation with its status and links to it", async () => {
    const { page, consoleErrors } = await open("/evaluations");
    const link = page.getByRole("link", { name: seed.evaluationId });
    await link.waitFor();
    expect(await page.locator("tbody tr").filter({ hasText: seed.evaluationId }).textContent()).toContain("succeeded");
    await link.click();
    await page.getByRole("heading", { name: `Evaluation ${seed.evaluationId}` }).waitFor();
    expect(consoleErrors).toEqual([]);
  });
  it("follows a new evaluation from running (with progress) to its results without a reload", async () => {
    const e = await api<{ models: string[]; dataset: string }>(`/v1/evaluations/${seed.evaluationId}`);
    const res = await fetch(`${seed.url}/v1/evaluations`, {
      method: "POST",
      headers: { authorization: `Bearer ${seed.key}`, "content-type": "application/json" },
      body: JSON.stringify({ models: [e.models[0]], data: { dataset: e.dataset }, kinds: ["knn"] }),
    });
    expect([201, 202], await res.clone().text()).toContain(res.status);
    const created = (await res.json()) as { id: string; status?: string };
    const { page, consoleErrors } = await open(`/evaluations/${created.id}`);
    await page.getByRole("heading", { name: `Evaluation ${created.id}` }).waitFor();
    if (created.status === "running") {
      // Either still running (a progress bar and the notice) or already done when the page loaded.
      await page.locator('.notice, [data-chart="confusion"] svg').first().waitFor();
      // One snapshot of the DOM: a running view shows its progress bar beside the notice.
      const view = await page.evaluate(() => ({
        running: document.querySelector(".notice") !== null,
        bars: document.querySelectorAll(".page-head progress").length,
      }));
      if (view.running) expect(view.bars).toBe(1);
    }
    await page.locator('[data-chart="confusion"] svg').waitFor({ timeout: 120_000 });
    expect(await page.locator(".badge").first().textContent()).toBe("succeeded");
    expect(consoleErrors).toEqual([]);
  });
});

describe("datasets", () => {
  it("lists the sets and shows the labeled set's stats with one bar per label", async () => {
    const d = await api<{ name: string; stats: { records: number; labels: Record<string, number> } }>(
      `/v1/datasets/${seed.datasetId}`,
    );
    const { page, consoleErrors } = await open("/datasets");
    await page.getByRole("link", { name: d.name }).first().waitFor();
    expect(await page.locator("tbody tr").count()).toBeGreaterThanOrEqual(2); // the corpus and the labeled set
    await page.goto(`${seed.url}/dashboard/#/datasets/${seed.datasetId}`);
    const bars = page.locator('[data-chart="stats-labels"] svg [aria-label="bar"] rect');
    await bars.first().waitFor();
    expect(await bars.count()).toBe(Object.keys(d.stats.labels).length);
    const facts = (await page.getByRole("region", { name: "Stats" }).textContent()) ?? "";
    expect(facts).toContain("Records");
    expect(facts).toContain(d.stats.records.toLocaleString("en-US"));
    expect(consoleErrors).toEqual([]);
  });
});

describe("dataset check errors", () => {
  it("lists an invalid set's errors as path and message", async () => {
    const bytes = new TextEncoder().encode('{"text": "fine", "label": "a"}\n{"text": "no label here"}\nnot json\n');
    const call = async (p: string, init: RequestInit = {}) => {
      const res = await fetch(`${seed.url}${p}`, {
        ...init,
        headers: { authorization: `Bearer ${seed.key}`, ...(init.headers as Record<string, string>) },
      });
      return { status: res.status, body: (await res.json()) as { id: string; status: string; errors: unknown[] } };
    };
    const created = await call("/v1/datasets", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "broken-probe",
        modality: "text",
        format: "jsonl",
        purpose: "probe",
        bytes: bytes.byteLength,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      }),
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const put = await call(`/v1/datasets/${id}/content`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(put.status).toBe(200);
    await call(`/v1/datasets/${id}/complete`, { method: "POST" });
    await expect.poll(async () => (await call(`/v1/datasets/${id}`)).body.status, { timeout: 60_000 }).toBe("invalid");
    const { errors } = (await call(`/v1/datasets/${id}`)).body as { errors: { line?: number; message: string }[] };
    expect(errors.length).toBeGreaterThan(0);

    const { page, consoleErrors } = await open(`/datasets/${id}`);
    const list = page.getByRole("region", { name: /Check errors/ }).locator("li");
    await list.first().waitFor();
    expect(await list.count()).toBe(errors.length);
    const first = (await list.first().textContent()) ?? "";
    expect(first).toContain(`line ${errors[0]?.line}`);
    expect(first).toContain(errors[0]?.message);
    expect(await page.locator(".badge").first().textContent()).toBe("invalid");
    expect(consoleErrors).toEqual([]);
  });
});

describe("playground", () => {
  it("embeds three typed texts and shows their 3×3 cosine-similarity matrix", async () => {
    const { page, consoleErrors } = await open("/playground");
    await page.getByLabel("Model").selectOption(seed.model);
    await page.getByText(/text encoder, \d+ dimensions/).waitFor();
    await page.getByLabel("Texts, one per line").fill("Call me Ishmael.\nThe whale!\nA cup of tea with lemon.");
    await page.getByRole("button", { name: "Embed" }).click();
    const cells = page.locator('[data-chart="similarity"] svg [aria-label="cell"] rect');
    await cells.first().waitFor();
    expect(await cells.count()).toBe(9);
    // Cells are drawn row by row; each one's title ends in its value, and the same values are written in them.
    const titles = await page.locator('[data-chart="similarity"] svg [aria-label="cell"] rect title').allTextContents();
    const values = titles.map((t) => Number(t.slice(t.lastIndexOf(": ") + 2)));
    expect(values).toHaveLength(9);
    const written = await page.locator('[data-chart="similarity"] svg [aria-label="text"] text').allTextContents();
    expect(written.sort()).toEqual(values.map((v) => v.toFixed(2)).sort());
    // Each text is itself (1 on the diagonal) and the matrix is symmetric.
    for (let i = 0; i < 3; i++) {
      expect(values[i * 3 + i]).toBeCloseTo(1, 2);
      for (let j = 0; j < 3; j++) expect(values[i * 3 + j]).toBeCloseTo(values[j * 3 + i] as number, 2);
    }
    expect(consoleErrors).toEqual([]);
  });

  it("takes image files for an image model and comma-separated series for a series model", async () => {
    const server = { url: seed.url, key: seed.key } as DevServer;
    await registerFolder(server, "pg-digits", path.join(FIXTURES, "tiny-image-encoder"), "int8");
    await registerFolder(server, "pg-power", path.join(FIXTURES, "tiny-series-encoder"), "int8");
    const { page, consoleErrors } = await open("/playground");
    const cells = page.locator('[data-chart="similarity"] svg [aria-label="cell"] rect');
    await page.getByLabel("Model").selectOption("pg-digits");
    await page.getByText(/image encoder, \d+ dimensions/).waitFor();
    expect(await page.getByLabel("Texts, one per line").isVisible()).toBe(false);
    await page
      .getByLabel("Images (PNG or JPEG)")
      .setInputFiles(["grey.png", "rgb.png", "photo.jpg"].map((f) => path.join(FIXTURES, "images", f)));
    await page.getByRole("button", { name: "Embed" }).click();
    await page.getByText(/3 embeddings of \d+ dimensions from pg-digits/).waitFor();
    expect(await cells.count()).toBe(9);

    await page.getByLabel("Model").selectOption("pg-power");
    expect(await cells.count()).toBe(0); // the image model's matrix is gone
    const series = page.getByLabel("Series, one per line (comma-separated numbers)");
    await series.waitFor();
    await series.fill("1, 2, 3, 4, 5, 6, 7, 8\n8, 7, 6, 5, 4, 3, 2, 1\n1, 2, 3, 4, 5, 6, 7, 9");
    await page.getByRole("button", { name: "Embed" }).click();
    await page.getByText(/3 embeddings of \d+ dimensions from pg-power/).waitFor();
    expect(await cells.count()).toBe(9);
    await series.fill("1, 2, x");
    await page.getByRole("button", { name: "Embed" }).click();
    expect(await page.getByRole("alert").textContent()).toMatch(/line 1: "x" is not a number/);
    expect(consoleErrors).toEqual([]);
  });

  it("says what is wrong, as text, when there is nothing to embed", async () => {
    const { page } = await open("/playground");
    await page.getByLabel("Model").selectOption(seed.model);
    await page.getByRole("button", { name: "Embed" }).click();
    expect(await page.getByRole("alert").textContent()).toMatch(/one text per line/);
  });
});

describe("layout", () => {
  const pages = () => [
    { path: `/evaluations/${seed.evaluationId}`, ready: '[data-chart="map"] svg' },
    { path: "/evaluations", ready: "tbody tr" },
    { path: `/datasets/${seed.datasetId}`, ready: '[data-chart="stats-labels"] svg' },
    { path: "/datasets", ready: "tbody tr" },
    { path: "/playground", ready: "#pg-text" },
  ];
  for (const size of [
    { width: 1400, height: 900 },
    { width: 390, height: 844 },
  ]) {
    it(`never scrolls sideways at ${size.width}×${size.height}`, async () => {
      for (const p of pages()) {
        const { page, consoleErrors, close } = await openPage(p.path, size);
        try {
          await page.locator(p.ready).first().waitFor({ timeout: 90_000 });
          await expectNoHorizontalScroll(page);
          expect(consoleErrors, p.path).toEqual([]);
        } finally {
          await close();
        }
      }
    });
  }
});
