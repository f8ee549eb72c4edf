// Small pieces the datasets, evaluations and playground pages share.
import { el, type PageContext } from "../page";

export const REFRESH_MS = 2000;

export function badge(status: string): HTMLElement {
  return el("span", { class: `badge ${status}` }, status);
}

/** A progress bar with its text beside it; `done/total` as a fraction, the text as written. */
export function progress(done: number, total: number, text: string, name: string): HTMLElement {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  return el(
    "div",
    { class: "progress" },
    el("progress", { max: 1, value: fraction, "aria-label": `${name} progress: ${text}` }),
    el("span", null, text),
  );
}

/** Re-runs `tick` every few seconds until the page is left or `tick` says nothing moves any more. */
export function refreshWhile(ctx: PageContext, tick: () => Promise<boolean>, everyMs = REFRESH_MS): void {
  const loop = () => {
    if (ctx.signal.aborted) return;
    const timer = setTimeout(async () => {
      if (ctx.signal.aborted) return;
      try {
        if (await tick()) loop();
      } catch {
        loop(); // a failed refresh keeps the last good view and tries again
      }
    }, everyMs);
    ctx.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  };
  loop();
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export const pct = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? "—" : `${(v * 100).toFixed(1)}%`;

/** A panel with a heading, for one part of a detail page. */
export function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return el("section", { class: "panel", "aria-label": title }, el("h2", null, title), ...children);
}
