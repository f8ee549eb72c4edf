// Charts for the datasets, evaluations and playground pages (Observable Plot, SVG so tests can count
// marks). Each draws into a host already in the page and reads its width, so a phone never scrolls sideways.
import * as Plot from "@observablehq/plot";
import { el } from "../page";

function widthOf(host: HTMLElement, min = 260): number {
  return Math.max(min, Math.floor(host.clientWidth || 600));
}

function place(host: HTMLElement, chart: Element, label: string): void {
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", label);
  host.replaceChildren(chart);
}

/** Horizontal bars of counts per name (label counts, channels, formats), largest first, at most `max`. */
export function countBars(host: HTMLElement, counts: Record<string, number>, label: string, max = 30): void {
  const all = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  if (all.length === 0) {
    host.replaceChildren(el("p", { class: "empty" }, "None."));
    return;
  }
  const rows = all.slice(0, max).map(([name, n]) => ({ name, n }));
  const longest = Math.max(...rows.map((r) => r.name.length));
  const chart = Plot.plot({
    width: widthOf(host),
    height: 30 + rows.length * 22,
    marginLeft: Math.min(160, 14 + longest * 7),
    marginRight: 48,
    style: { fontSize: "12px", background: "transparent" },
    x: { label: "count →", grid: true },
    y: { label: null, domain: rows.map((r) => r.name) },
    marks: [
      Plot.barX(rows, { x: "n", y: "name", fill: "var(--accent, steelblue)" }),
      Plot.text(rows, { x: "n", y: "name", text: (d: { n: number }) => String(d.n), textAnchor: "start", dx: 4 }),
      Plot.ruleX([0]),
    ],
  });
  place(host, chart, label);
  if (all.length > max) host.append(el("p", { class: "muted" }, `The ${max} largest of ${all.length} shown.`));
}

export type AccuracyBar = { model: string; kind: string; accuracy: number; baseline: boolean };

/** Accuracy per model, one bar per probe kind, baselines drawn in grey. */
export function accuracyBars(host: HTMLElement, rows: AccuracyBar[], label: string): void {
  if (rows.length === 0) {
    host.replaceChildren(el("p", { class: "empty" }, "No results."));
    return;
  }
  const width = widthOf(host);
  const models = [...new Set(rows.map((r) => r.model))];
  const kinds = [...new Set(rows.map((r) => r.kind))];
  const narrow = width < 520;
  const chart = Plot.plot({
    width,
    height: narrow ? 300 : 280,
    marginBottom: narrow ? 70 : 40,
    marginLeft: 48,
    style: { fontSize: "12px", background: "transparent" },
    fx: { label: null, domain: models, tickRotate: narrow ? -25 : 0, padding: 0.15 },
    x: { axis: null, domain: kinds, padding: 0.1 },
    y: { label: "↑ accuracy", domain: [0, 1], grid: true },
    color: { legend: true, domain: kinds, type: "categorical" },
    marks: [
      Plot.barY(rows, {
        fx: "model",
        x: "kind",
        y: "accuracy",
        fill: "kind",
        fillOpacity: (d: AccuracyBar) => (d.baseline ? 0.45 : 1),
        title: (d: AccuracyBar) =>
          `${d.model} ${d.kind}: ${(d.accuracy * 100).toFixed(1)}%${d.baseline ? " (baseline)" : ""}`,
      }),
      Plot.ruleY([0]),
    ],
  });
  place(host, chart, label);
}

/**
 * A heat map of `matrix` (rows × columns named by `rows`/`cols`) with each value written in its cell:
 * confusion counts, or cosine similarities.
 */
export function heatmap(
  host: HTMLElement,
  matrix: number[][],
  opts: {
    rows: string[];
    cols: string[];
    xLabel: string | null;
    yLabel: string | null;
    label: string;
    format: (v: number) => string;
    domain?: [number, number];
    scheme?: Plot.ColorScheme;
    /** a scheme dark at both ends (similarities from −1 to 1) */
    diverging?: boolean;
  },
): void {
  const cells = matrix.flatMap((r, i) =>
    r.map((v, j) => ({ row: opts.rows[i] ?? String(i), col: opts.cols[j] ?? String(j), v })),
  );
  const longest = Math.max(1, ...opts.rows.map((s) => s.length));
  const longestCol = Math.max(1, ...opts.cols.map((s) => s.length));
  const rotate = longestCol > 3;
  const width = widthOf(host);
  const marginLeft = Math.min(200, 24 + Math.ceil(longest * 6.5));
  const marginBottom = rotate ? Math.min(120, 36 + Math.ceil(longestCol * 5)) : 40;
  const side = Math.min(64, Math.max(14, Math.floor((width - marginLeft - 10) / Math.max(1, opts.cols.length))));
  const showText = side >= 22;
  // Dark cells get white text, light ones black, whatever the scheme's direction.
  const values = cells.map((c) => c.v);
  const [lo, hi] = opts.domain ?? [Math.min(...values), Math.max(...values)];
  const dark = (d: { v: number }) => {
    const t = hi > lo ? (d.v - lo) / (hi - lo) : 0;
    return opts.diverging ? Math.abs(2 * t - 1) > 0.6 : t > 0.6;
  };
  const text = (data: typeof cells, fill: string) =>
    Plot.text(data, { x: "col", y: "row", text: (d: { v: number }) => opts.format(d.v), fill });
  const chart = Plot.plot({
    width: Math.min(width, marginLeft + 10 + side * opts.cols.length),
    height: 20 + marginBottom + side * opts.rows.length,
    marginLeft,
    marginBottom,
    padding: 0.04,
    style: { fontSize: "11px", background: "transparent" },
    x: { label: opts.xLabel, domain: opts.cols, tickRotate: rotate ? -35 : 0 },
    y: { label: opts.yLabel, domain: opts.rows },
    color: { scheme: opts.scheme ?? "blues", domain: opts.domain, legend: false },
    marks: [
      Plot.cell(cells, {
        x: "col",
        y: "row",
        fill: "v",
        title: (d: { row: string; col: string; v: number }) => `${d.row} → ${d.col}: ${opts.format(d.v)}`,
      }),
      showText ? text(cells.filter(dark), "white") : null,
      showText
        ? text(
            cells.filter((c) => !dark(c)),
            "black",
          )
        : null,
    ],
  });
  place(host, chart, opts.label);
}

export type MapPoint = { x: number; y: number; label: string; name: string };

/** Points on two axes coloured by label, with a legend. */
export function scatter(host: HTMLElement, points: MapPoint[], opts: { x: string; y: string; label: string }): void {
  const width = widthOf(host);
  const labels = [...new Set(points.map((p) => p.label))].sort();
  const chart = Plot.plot({
    width,
    height: Math.round(Math.min(480, Math.max(260, width * 0.6))),
    marginLeft: 44,
    style: { fontSize: "12px", background: "transparent" },
    x: { label: opts.x, grid: true },
    y: { label: opts.y, grid: true },
    color: { legend: true, domain: labels, type: "categorical" },
    marks: [
      Plot.dot(points, {
        x: "x",
        y: "y",
        fill: "label",
        r: 3.5,
        fillOpacity: 0.85,
        title: (d: MapPoint) => `${d.label}: ${d.name}`,
      }),
    ],
  });
  // The legend comes back as a figure around the SVG; label the whole thing.
  place(host, chart, opts.label);
}
