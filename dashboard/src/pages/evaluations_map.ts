// The evaluation page's 2-D map: an even sample of the probe set (GET /v1/datasets/{id}/sample),
// embedded with the evaluation's first model, projected on its two principal components in the
// browser and drawn coloured by label. Every step says where it is; a failure is text.
import type { Api } from "../api";
import { el, errorBox } from "../page";
import { pca2 } from "../pca";
import { type MapPoint, scatter } from "./pages_charts";
import { pct } from "./pages_util";

export const MAP_ITEMS = 400;
/** Inputs per /v1/embeddings call: small enough that one request never meets the encoder's limits. */
const BATCH = 32;

type Sample = { read: number; data: { index: number; input: unknown; label: string | null }[] };
type Embeddings = { data: { index: number; embedding: number[] }[] };

function nameOf(input: unknown, index: number): string {
  if (typeof input === "string" && !input.startsWith("data:"))
    return input.length > 80 ? `${input.slice(0, 77)}…` : input;
  return `record ${index}`;
}

/**
 * Fills `host` with the map of `datasetId`'s sample in `model`'s embedding space.
 *
 * Args:
 *   host: a chart container already in the page (the map reads its width).
 *   api, signal: the page's API and its leave signal (work stops when the user leaves).
 *   model: the model ref whose embeddings are mapped.
 *   datasetId: the evaluation's labeled set.
 */
export async function drawMap(
  host: HTMLElement,
  api: Api,
  signal: AbortSignal,
  model: string,
  datasetId: string,
): Promise<void> {
  const status = el("p", { class: "muted", "aria-live": "polite" }, "Reading a sample of the probe set…");
  host.replaceChildren(status);
  try {
    const sample = await api.get<Sample>(`/v1/datasets/${encodeURIComponent(datasetId)}/sample?n=${MAP_ITEMS}`, signal);
    const items = sample.data;
    if (items.length < 2) {
      host.replaceChildren(el("p", { class: "empty" }, "The probe set has fewer than two records to map."));
      return;
    }
    const vectors: number[][] = [];
    for (let i = 0; i < items.length; i += BATCH) {
      if (signal.aborted) return;
      status.textContent = `Embedding ${items.length} records with ${model}: ${i}/${items.length}…`;
      const chunk = items.slice(i, i + BATCH);
      const res = await api.post<Embeddings>("/v1/embeddings", {
        model,
        input: chunk.map((r) => r.input),
        truncate: true,
      });
      const ordered = [...res.data].sort((a, b) => a.index - b.index);
      vectors.push(...ordered.map((d) => d.embedding));
    }
    if (signal.aborted) return;
    status.textContent = "Projecting on two principal components…";
    const p = pca2(vectors);
    const points: MapPoint[] = items.map((r, i) => ({
      x: (p.points[i] as [number, number])[0],
      y: (p.points[i] as [number, number])[1],
      label: r.label ?? "(none)",
      name: nameOf(r.input, r.index),
    }));
    const chartHost = el("div", { class: "chart", "data-chart": "map" });
    const note = el(
      "p",
      { class: "muted" },
      `${items.length} of the first ${sample.read} records, spread evenly, embedded with ${model}. ` +
        `PC1 explains ${pct(p.explained[0])} of the variance, PC2 ${pct(p.explained[1])}.`,
    );
    host.replaceChildren(chartHost, note);
    scatter(chartHost, points, {
      x: "PC1 →",
      y: "↑ PC2",
      label: `${items.length} probe-set records embedded with ${model}, on their first two principal components, coloured by label`,
    });
  } catch (e) {
    if (signal.aborted) return;
    host.replaceChildren(errorBox(e));
  }
}
