// Line charts with Observable Plot (SVG, so tests can count the marks), sized to their container.
import * as Plot from "@observablehq/plot";
import { el } from "./page";

export type Point = { step: number } & Record<string, number>;

/** Long form: one row per (step, series) so Plot can colour series by name. */
function longForm(points: Point[], keys: string[]) {
  const rows: { step: number; series: string; value: number }[] = [];
  for (const p of points) {
    for (const k of keys) {
      const v = p[k];
      if (typeof v === "number" && Number.isFinite(v)) rows.push({ step: p.step, series: k, value: v });
    }
  }
  return rows;
}

/**
 * A lines + dots chart of `keys` per step, or a note when there is nothing to draw. The width is read
 * from `host` (already in the page), so the SVG never overflows a phone screen.
 */
export function stepChart(
  host: HTMLElement,
  points: Point[],
  keys: string[],
  opts: { yLabel: string; label: string; empty: string },
): void {
  const rows = longForm(points, keys);
  if (rows.length === 0) {
    host.replaceChildren(el("p", { class: "empty" }, opts.empty));
    return;
  }
  const width = Math.max(280, Math.floor(host.clientWidth || 600));
  const many = keys.length > 1;
  const chart = Plot.plot({
    width,
    height: Math.round(Math.min(320, Math.max(200, width * 0.45))),
    marginLeft: 52,
    style: { fontSize: "12px", background: "transparent" },
    x: { label: "step →", grid: true },
    y: { label: `↑ ${opts.yLabel}`, grid: true, nice: true },
    color: many ? { legend: true, type: "categorical" } : undefined,
    marks: [
      Plot.lineY(rows, { x: "step", y: "value", stroke: many ? "series" : "var(--accent, steelblue)", z: "series" }),
      Plot.dot(rows, {
        x: "step",
        y: "value",
        fill: many ? "series" : "var(--accent, steelblue)",
        r: 3,
        tip: true,
        title: (d: { step: number; series: string; value: number }) =>
          `${d.series} ${d.value.toPrecision(4)} at step ${d.step}`,
      }),
    ],
  });
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", opts.label);
  host.replaceChildren(chart);
}
