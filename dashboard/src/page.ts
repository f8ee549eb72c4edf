// What every page module gets and returns, and the few DOM helpers they share.
import { type Api, ApiError } from "./api";

export type PageContext = {
  api: Api;
  /** hash path segments after the page name: `#/jobs/abc` → ["abc"] */
  params: string[];
  navigate(hash: string): void;
  /** aborted when the user leaves the page: stop timers and fetches with it */
  signal: AbortSignal;
};

export type Page = {
  title: string;
  render(view: HTMLElement, ctx: PageContext): Promise<void>;
};

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** el("a", {href: "#/jobs", class: "x", onclick: fn}, "text", child) */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") node.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, ...children);
  return node;
}

export function append(node: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** A problem as text in an alert: error states are read, not guessed from a blank page. */
export function errorBox(err: unknown): HTMLElement {
  let title = "Something went wrong";
  let detail = "";
  if (err instanceof ApiError) {
    title = err.problem?.title ?? `HTTP ${err.status}`;
    detail = err.problem?.detail ?? "";
    if (err.status) title = `${title} (${err.status})`;
  } else if (err instanceof Error) {
    detail = err.message;
  } else {
    detail = String(err);
  }
  return el("div", { class: "error", role: "alert" }, el("strong", null, title), detail ? el("p", null, detail) : null);
}

export function showError(view: HTMLElement, err: unknown): void {
  // A page left while its fetch was in flight has nothing to report.
  if (err instanceof DOMException && err.name === "AbortError") return;
  view.replaceChildren(errorBox(err));
}

export type Column<T> = { label: string; value: (row: T) => Child; class?: string };

/**
 * A table in a horizontal scroller, so wide tables never widen the page. `stack`: on a phone each row
 * becomes a small card of "label value" lines instead (every cell carries its column's label).
 */
export function table<T>(
  rows: T[],
  columns: Column<T>[],
  empty = "Nothing yet.",
  opts: { stack?: boolean } = {},
): HTMLElement {
  if (rows.length === 0) return el("p", { class: "empty" }, empty);
  const head = el("tr", null, ...columns.map((c) => el("th", { scope: "col", class: c.class }, c.label)));
  const body = rows.map((r) =>
    el("tr", null, ...columns.map((c) => el("td", { class: c.class, "data-label": c.label }, c.value(r)))),
  );
  return el(
    "div",
    { class: opts.stack ? "table-wrap stack" : "table-wrap" },
    el("table", null, el("thead", null, head), el("tbody", null, ...body)),
  );
}

export function fmtDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** "Dec 6, 05:34" — for tables, where a full date would crowd the row. */
export function fmtShortDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function fmtNum(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (Number.isInteger(n)) return n.toLocaleString();
  return Math.abs(n) >= 1000 ? Math.round(n).toLocaleString() : n.toPrecision(digits);
}
