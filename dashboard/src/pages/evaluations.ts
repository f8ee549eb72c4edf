// Evaluations: the list, and one evaluation's accuracy per model against the raw-feature baseline,
// its results table, per-class precision/recall/F1 and confusion heat map for a chosen (model, probe)
// row, and a 2-D map of the probe set's embeddings. While `running` it shows progress and refreshes;
// `failed` shows the error as text.
import "./pages.css";
import { el, fmtDate, fmtNum, type Page, type PageContext, showError, table } from "../page";
import { drawMap } from "./evaluations_map";
import { type AccuracyBar, accuracyBars, heatmap } from "./pages_charts";
import { badge, pct, progress, refreshWhile, section } from "./pages_util";

type Confusion = { labels: string[]; matrix: number[][] };
type Row = {
  model: string;
  features: string;
  kind: string;
  accuracy: number;
  macro_f1: number;
  confusion: Confusion | null;
  delta_vs_baseline: number | null;
  hyperparameters: Record<string, unknown>;
};
type Progress = {
  phase: "embedding" | "fitting" | "done";
  model: string | null;
  items_done: number;
  items_total: number;
  models_fitted: number;
  models_total: number;
};
export type Evaluation = {
  id: string;
  status?: "running" | "succeeded" | "failed";
  progress?: Progress | null;
  error?: { title: string; detail: string } | null;
  models: string[];
  dataset: string | null;
  labels: string[];
  n_train: number;
  n_test: number;
  kinds: string[];
  rows: Row[];
  baseline: { kind: string; features: number } | null;
  createdAt: string;
  completedAt?: string | null;
};

const isBaseline = (r: Row) => r.features !== "embeddings" && r.features !== "head";
const statusOf = (e: Evaluation) => e.status ?? "succeeded";

function progressText(p: Progress | null | undefined): string {
  if (!p) return "queued";
  if (p.phase === "embedding") return `embedding ${p.model ?? ""}: ${p.items_done}/${p.items_total} items`;
  if (p.phase === "fitting") return `fitting ${p.model ?? ""}: ${p.models_fitted}/${p.models_total} models`;
  return "finishing";
}

function statusCell(e: Evaluation): HTMLElement {
  const s = statusOf(e);
  if (s !== "running") return badge(s);
  const p = e.progress;
  // Embedding is most of the work; fitting shows as models done.
  const [done, total] =
    p?.phase === "fitting" ? [p.models_fitted, p.models_total] : [p?.items_done ?? 0, p?.items_total ?? 0];
  return el("div", { class: "status-cell" }, badge(s), progress(done, total, progressText(p), e.id));
}

function best(e: Evaluation): Row | null {
  const rows = e.rows.filter((r) => !isBaseline(r));
  return rows.reduce<Row | null>((b, r) => (b === null || r.accuracy > b.accuracy ? r : b), null);
}

async function renderList(view: HTMLElement, ctx: PageContext): Promise<void> {
  const body = el("div");
  const stamp = el("span", { class: "muted", "aria-live": "polite" });
  view.replaceChildren(el("div", { class: "page-head" }, el("h1", null, "Evaluations"), stamp), body);
  const draw = async () => {
    const { data } = await ctx.api.get<{ data: Evaluation[] }>("/v1/evaluations", ctx.signal);
    if (ctx.signal.aborted) return false;
    body.replaceChildren(
      table(
        data,
        [
          { label: "Evaluation", value: (e) => el("a", { href: `#/evaluations/${encodeURIComponent(e.id)}` }, e.id) },
          { label: "Status", value: statusCell },
          { label: "Models", value: (e) => e.models.join(", "), class: "wrap" },
          {
            label: "Best",
            value: (e) => (best(e) ? `${pct(best(e)?.accuracy)} (${best(e)?.kind})` : "—"),
            class: "num",
          },
          { label: "Labels", value: (e) => fmtNum(e.labels.length), class: "num" },
          { label: "Test items", value: (e) => fmtNum(e.n_test), class: "num" },
          { label: "Created", value: (e) => fmtDate(e.createdAt) },
        ],
        "No evaluations yet: run one with `selfsup eval` or POST /v1/evaluations.",
      ),
    );
    const moving = data.some((e) => statusOf(e) === "running");
    stamp.textContent = moving ? "an evaluation is running; refreshing" : "";
    return moving;
  };
  if (await draw()) refreshWhile(ctx, draw);
}

export type ClassScore = { label: string; precision: number; recall: number; f1: number; support: number };

/** Per-class precision, recall, F1 and support from a confusion matrix (rows true, columns predicted). */
export function perClass(c: Confusion): ClassScore[] {
  return c.labels.map((label, k) => {
    const row = c.matrix[k] ?? [];
    const tp = row[k] ?? 0;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = c.matrix.reduce((a, r) => a + (r[k] ?? 0), 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
}

function delta(v: number | null): Node | string {
  if (v === null) return "—";
  const text = `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)} pts`;
  return el("span", { class: v >= 0 ? "positive" : "negative" }, text);
}

function hyper(h: Record<string, unknown>): string {
  return Object.entries(h)
    .map(([k, v]) => `${k}=${typeof v === "number" ? fmtNum(v) : JSON.stringify(v)}`)
    .join(", ");
}

function resultsTable(e: Evaluation): HTMLElement {
  return table(e.rows, [
    { label: "Model", value: (r) => (isBaseline(r) ? `${r.model} (baseline)` : r.model) },
    { label: "Probe", value: (r) => r.kind },
    { label: "Accuracy", value: (r) => pct(r.accuracy), class: "num" },
    { label: "Macro F1", value: (r) => fmtNum(r.macro_f1), class: "num" },
    { label: "Δ vs baseline", value: (r) => delta(r.delta_vs_baseline), class: "num" },
    { label: "Hyperparameters", value: (r) => hyper(r.hyperparameters), class: "wrap" },
  ]);
}

/** The confusion heat map and per-class table of one row, chosen with a select. */
function classDetail(e: Evaluation): HTMLElement | null {
  const rows = e.rows.filter((r) => r.confusion !== null);
  if (rows.length === 0) return null;
  const initial = rows.indexOf(best({ ...e, rows }) ?? (rows[0] as Row));
  const select = el(
    "select",
    { id: "eval-row", name: "eval-row" },
    ...rows.map((r, i) =>
      el(
        "option",
        { value: i, selected: i === initial },
        `${r.model}${isBaseline(r) ? " (baseline)" : ""} · ${r.kind}`,
      ),
    ),
  );
  const heat = el("div", { class: "chart scroll", "data-chart": "confusion" });
  const scores = el("div");
  const show = () => {
    const r = rows[Number(select.value)] as Row;
    const c = r.confusion as Confusion;
    heatmap(heat, c.matrix, {
      rows: c.labels,
      cols: c.labels,
      xLabel: "predicted →",
      yLabel: "↑ true",
      label: `Confusion matrix of ${r.model} ${r.kind} on the test split: rows true labels, columns predictions`,
      format: (v) => String(v),
    });
    scores.replaceChildren(
      table(perClass(c), [
        { label: "Label", value: (s) => s.label },
        { label: "Precision", value: (s) => fmtNum(s.precision), class: "num" },
        { label: "Recall", value: (s) => fmtNum(s.recall), class: "num" },
        { label: "F1", value: (s) => fmtNum(s.f1), class: "num" },
        { label: "Support", value: (s) => fmtNum(s.support), class: "num" },
      ]),
    );
  };
  select.addEventListener("change", show);
  const panel = section(
    "Per class",
    el("div", { class: "controls" }, el("label", { for: "eval-row" }, "Model and probe", select)),
    el(
      "div",
      { class: "grid" },
      el("div", null, el("h3", null, "Confusion (test split)"), heat),
      el("div", null, el("h3", null, "Precision, recall, F1"), scores),
    ),
  );
  queueMicrotask(show);
  return panel;
}

function facts(e: Evaluation): HTMLElement {
  const rows: [string, Node | string][] = [
    ["ID", el("code", null, e.id)],
    ["Models", e.models.join(", ")],
    [
      "Dataset",
      e.dataset ? el("a", { href: `#/datasets/${encodeURIComponent(e.dataset)}` }, e.dataset) : "inline items",
    ],
    ["Labels", e.labels.join(", ") || "—"],
    ["Split", `${fmtNum(e.n_train)} train / ${fmtNum(e.n_test)} test`],
    ["Probes", e.kinds.join(", ")],
    ["Baseline", e.baseline ? `${e.baseline.kind} (${fmtNum(e.baseline.features)} features)` : "—"],
    ["Created", fmtDate(e.createdAt)],
    ["Completed", fmtDate(e.completedAt)],
  ];
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of rows) dl.append(el("dt", null, k), el("dd", null, v));
  return dl;
}

function renderResults(view: HTMLElement, ctx: PageContext, e: Evaluation): void {
  const bars = el("div", { class: "chart", "data-chart": "accuracy" });
  const map = el("div", { class: "chart", "data-chart": "map-host" });
  const model = e.models[0];
  view.append(
    el("div", { class: "grid" }, section("Evaluation", facts(e)), section("Accuracy on the test split", bars)),
    section("Results", resultsTable(e)),
    ...[classDetail(e)].filter((x): x is HTMLElement => x !== null),
    section(
      model ? `Embeddings map (${model})` : "Embeddings map",
      e.dataset && model
        ? map
        : el("p", { class: "empty" }, "The map needs a stored probe set; this evaluation was given inline items."),
    ),
  );
  const rows: AccuracyBar[] = e.rows.map((r) => ({
    model: isBaseline(r) ? `${r.model} (baseline)` : r.model,
    kind: r.kind,
    accuracy: r.accuracy,
    baseline: isBaseline(r),
  }));
  accuracyBars(bars, rows, `Test accuracy per model and probe, baseline ${e.baseline?.kind ?? ""} included`);
  if (e.dataset && model) void drawMap(map, ctx.api, ctx.signal, model, e.dataset);
}

async function renderDetail(view: HTMLElement, ctx: PageContext, id: string): Promise<void> {
  const draw = async () => {
    const e = await ctx.api.get<Evaluation>(`/v1/evaluations/${encodeURIComponent(id)}`, ctx.signal);
    if (ctx.signal.aborted) return false;
    const s = statusOf(e);
    view.replaceChildren(
      el("p", { class: "crumbs" }, el("a", { href: "#/evaluations" }, "← Evaluations")),
      el("div", { class: "page-head" }, el("h1", null, `Evaluation ${e.id}`), statusCell(e)),
    );
    if (s === "running") {
      view.append(
        section("Evaluation", facts(e)),
        el("p", { class: "notice" }, "Running on the work queue; this page refreshes until it is done."),
      );
      return true;
    }
    if (s === "failed") {
      const err = e.error;
      view.append(
        el(
          "div",
          { class: "error", role: "alert" },
          el("strong", null, err?.title ?? "The evaluation failed"),
          err?.detail ? el("p", null, err.detail) : null,
        ),
        section("Evaluation", facts(e)),
      );
      return false;
    }
    renderResults(view, ctx, e);
    return false;
  };
  if (await draw()) refreshWhile(ctx, draw);
}

export const page: Page = {
  title: "Evaluations",
  async render(view, ctx) {
    try {
      const id = ctx.params[0];
      if (id) await renderDetail(view, ctx, id);
      else await renderList(view, ctx);
    } catch (e) {
      showError(view, e);
    }
  },
};
