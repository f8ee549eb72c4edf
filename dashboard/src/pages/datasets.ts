// Datasets: the list (status with the background check's progress while `validating`) and one set's
// stats per modality (sizes, record lengths, label counts as bars, image sizes and channels, series
// lengths) and the check's errors. Refreshes itself while a check runs.
import "./pages.css";
import { el, fmtDate, fmtNum, type Page, type PageContext, showError, table } from "../page";
import { countBars } from "./pages_charts";
import { badge, fmtBytes, progress, refreshWhile, section } from "./pages_util";

type Issue = { line?: number; column?: string; member?: string; message: string };
export type Dataset = {
  id: string;
  name: string;
  modality: "text" | "image" | "timeseries";
  purpose: "pretrain" | "probe";
  format: string;
  bytes: number;
  sha256: string;
  status: string;
  stats: Record<string, unknown> | null;
  errors: Issue[] | null;
  check?: { bytes_done: number; bytes_total: number; started_at: string } | null;
  createdAt: string;
  completedAt: string | null;
};

/** Where an issue is, as the API's problems name it: `line 7, column t5`, `member cat/1.png`, or `file`. */
export function issuePath(e: Issue): string {
  if (e.member) return `member ${e.member}`;
  if (e.line) return e.column ? `line ${e.line}, column ${e.column}` : `line ${e.line}`;
  return "file";
}

function statusCell(d: Dataset): HTMLElement {
  if (d.status !== "validating") return badge(d.status);
  const c = d.check;
  const text = c ? `checked ${fmtBytes(c.bytes_done)} of ${fmtBytes(c.bytes_total)}` : "check queued";
  return el(
    "div",
    { class: "status-cell" },
    badge(d.status),
    progress(c?.bytes_done ?? 0, c?.bytes_total ?? 0, text, d.name),
  );
}

const records = (d: Dataset) => fmtNum(d.stats?.records as number | undefined);

async function renderList(view: HTMLElement, ctx: PageContext): Promise<void> {
  const body = el("div");
  const stamp = el("span", { class: "muted", "aria-live": "polite" });
  view.replaceChildren(el("div", { class: "page-head" }, el("h1", null, "Datasets"), stamp), body);
  const draw = async () => {
    const { data } = await ctx.api.get<{ data: Dataset[] }>("/v1/datasets", ctx.signal);
    if (ctx.signal.aborted) return false;
    body.replaceChildren(
      table(
        data,
        [
          { label: "Name", value: (d) => el("a", { href: `#/datasets/${encodeURIComponent(d.id)}` }, d.name) },
          { label: "Modality", value: (d) => d.modality },
          { label: "Purpose", value: (d) => d.purpose },
          { label: "Status", value: statusCell },
          { label: "Size", value: (d) => fmtBytes(d.bytes), class: "num" },
          { label: "Records", value: records, class: "num" },
          { label: "Format", value: (d) => d.format },
          { label: "Created", value: (d) => fmtDate(d.createdAt) },
        ],
        "No datasets yet: upload one with `selfsup upload` or POST /v1/datasets.",
      ),
    );
    const moving = data.some((d) => d.status === "validating");
    stamp.textContent = moving ? "a check is running; refreshing" : "";
    return moving;
  };
  if (await draw()) refreshWhile(ctx, draw);
}

type Range = { min: number; max: number };
const isRange = (v: unknown): v is Range =>
  typeof v === "object" && v !== null && typeof (v as Range).min === "number" && typeof (v as Range).max === "number";
const isCounts = (v: unknown): v is Record<string, number> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "number");

/** What each stats key means, in the order shown; keys not listed follow under their own names. */
const STAT_LABELS: Record<string, string> = {
  records: "Records",
  bytes: "Size",
  decompressed_bytes: "Decompressed",
  lines: "Lines",
  empty: "Empty lines",
  duplicates: "Duplicate lines",
  mean_length: "Mean length",
  min_length: "Shortest",
  max_length: "Longest",
  members: "Archive members",
  ignored: "Ignored members",
  corrupt: "Corrupt images",
  unlabeled: "Unlabeled",
  width: "Width (px)",
  height: "Height (px)",
  channels: "Channels",
  points: "Values (points × channels)",
};

function lengthUnit(d: Dataset): string {
  if (d.modality === "timeseries") return " points";
  if (d.modality === "text") return " chars";
  return "";
}

function statFacts(d: Dataset, stats: Record<string, unknown>): HTMLElement {
  const keys = [
    ...Object.keys(STAT_LABELS).filter((k) => k in stats),
    ...Object.keys(stats).filter((k) => !(k in STAT_LABELS)),
  ];
  const dl = el("dl", { class: "facts" });
  for (const k of keys) {
    const v = stats[k];
    let text: string;
    if (k === "bytes" || k === "decompressed_bytes") text = fmtBytes(v as number);
    else if (k.endsWith("_length") && typeof v === "number") text = `${fmtNum(v)}${lengthUnit(d)}`;
    else if (isRange(v)) text = v.min === v.max ? fmtNum(v.min) : `${fmtNum(v.min)} – ${fmtNum(v.max)}`;
    else if (typeof v === "number") text = fmtNum(v);
    else if (typeof v === "boolean") text = v ? "yes" : "no";
    else if (isCounts(v))
      continue; // drawn as bars below
    else text = v === null || v === undefined ? "—" : String(v);
    dl.append(el("dt", null, STAT_LABELS[k] ?? k.replaceAll("_", " ")), el("dd", null, text));
  }
  return dl;
}

const COUNT_TITLES: Record<string, string> = {
  labels: "Records per label",
  channels: "Images per channel count",
  formats: "Images per format",
};

function statsSection(d: Dataset, view: HTMLElement): HTMLElement {
  const stats = d.stats;
  if (!stats) {
    return section(
      "Stats",
      el("p", { class: "empty" }, d.status === "validating" ? "Stats appear when the check finishes." : "No stats."),
    );
  }
  const panel = section("Stats", statFacts(d, stats));
  const charts: [string, Record<string, number>][] = Object.entries(stats).filter(
    (e): e is [string, Record<string, number>] => isCounts(e[1]),
  );
  // Bars are drawn once their hosts are in the page, so they can read its width.
  queueMicrotask(() => {
    for (const [k, counts] of charts) {
      const host = el("div", { class: "chart", "data-chart": `stats-${k}` });
      panel.append(el("h3", null, COUNT_TITLES[k] ?? k), host);
      if (view.isConnected) countBars(host, counts, `${COUNT_TITLES[k] ?? k} of ${d.name}`);
    }
  });
  return panel;
}

function errorsSection(d: Dataset): HTMLElement {
  const errors = d.errors ?? [];
  return section(
    `Check errors (${errors.length})`,
    el(
      "ul",
      { class: "issues" },
      ...errors.map((e) => el("li", null, el("code", null, issuePath(e)), " ", el("span", null, e.message))),
    ),
  );
}

function facts(d: Dataset): HTMLElement {
  const rows: [string, Node | string][] = [
    ["ID", el("code", null, d.id)],
    ["Modality", d.modality],
    ["Purpose", d.purpose],
    ["Format", d.format],
    ["Size", fmtBytes(d.bytes)],
    ["SHA-256", el("code", { class: "hash" }, d.sha256)],
    ["Created", fmtDate(d.createdAt)],
    ["Completed", fmtDate(d.completedAt)],
  ];
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of rows) dl.append(el("dt", null, k), el("dd", null, v));
  return dl;
}

async function renderDetail(view: HTMLElement, ctx: PageContext, id: string): Promise<void> {
  const draw = async () => {
    const d = await ctx.api.get<Dataset>(`/v1/datasets/${encodeURIComponent(id)}`, ctx.signal);
    if (ctx.signal.aborted) return false;
    view.replaceChildren(
      el("p", { class: "crumbs" }, el("a", { href: "#/datasets" }, "← Datasets")),
      el("div", { class: "page-head" }, el("h1", null, d.name), statusCell(d)),
      el("div", { class: "grid" }, section("Dataset", facts(d)), statsSection(d, view)),
      ...(d.errors?.length ? [errorsSection(d)] : []),
    );
    return d.status === "validating";
  };
  if (await draw()) refreshWhile(ctx, draw);
}

export const page: Page = {
  title: "Datasets",
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
