// The dashboard shell: sign-in (the API key lives in sessionStorage only, checked with GET /v1/models),
// the nav, and a hash router that gives each page an AbortSignal ended when the user leaves it.
import "./app.css";
import { type Api, ApiError, makeApi } from "./api";
import { el, errorBox, type Page } from "./page";
import { page as datasets } from "./pages/datasets";
import { page as evaluations } from "./pages/evaluations";
import { page as jobs } from "./pages/jobs";
import { page as models } from "./pages/models";
import { page as playground } from "./pages/playground";

const KEY = "selfsup.apiKey";
const PAGES: Record<string, Page> = { jobs, models, datasets, evaluations, playground };
const NAV: [string, string][] = [
  ["jobs", "Jobs"],
  ["models", "Models"],
  ["datasets", "Datasets"],
  ["evaluations", "Evaluations"],
  ["playground", "Playground"],
];

// `?api=<origin>` points the app at another API (the tests use it to show "API down"); same origin by default.
const apiBase = new URLSearchParams(location.search).get("api") ?? "";
const root = document.getElementById("app") as HTMLElement;
let leave: AbortController | null = null;

function signOut(): void {
  sessionStorage.removeItem(KEY);
  window.onhashchange = null;
  leave?.abort();
  showSignIn();
}

function showSignIn(problem?: unknown): void {
  const input = el("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    placeholder: "ss_…",
  });
  const status = el("div", { class: "signin-status", "aria-live": "polite" });
  if (problem) status.append(errorBox(problem));
  const button = el("button", { type: "submit" }, "Sign in");
  const form = el(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "selfsup"),
    el("p", null, "Sign in with an API key. It is kept in this browser tab's session only."),
    el("label", { for: "api-key" }, "API key"),
    input,
    button,
    status,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    status.replaceChildren(el("p", { class: "muted" }, "Checking the key…"));
    try {
      await makeApi(key, apiBase).get("/v1/models");
      sessionStorage.setItem(KEY, key);
      // replaceState: no hashchange event to render the first page twice
      if (!location.hash || location.hash === "#/") history.replaceState(null, "", "#/jobs");
      showApp(key);
    } catch (e) {
      status.replaceChildren(errorBox(e));
      button.disabled = false;
    }
  });
  root.replaceChildren(el("main", { class: "signin-main" }, form));
  input.focus();
}

function showApp(key: string): void {
  const api = makeApi(key, apiBase);
  const links = NAV.map(([id, label]) => el("a", { href: `#/${id}`, "data-page": id }, label));
  const nav = el(
    "nav",
    { class: "nav", "aria-label": "Dashboard" },
    el("a", { href: "#/jobs", class: "brand" }, "selfsup"),
    el("div", { class: "nav-links" }, ...links),
    el("button", { type: "button", class: "signout", onclick: signOut }, "Sign out"),
  );
  const view = el("main", { id: "view", tabindex: "-1" });
  root.replaceChildren(el("header", null, nav), view);
  const route = () => void render(api, view, links);
  window.onhashchange = route;
  route();
}

async function render(api: Api, view: HTMLElement, links: HTMLAnchorElement[]): Promise<void> {
  leave?.abort();
  const controller = new AbortController();
  leave = controller;
  const [name = "jobs", ...params] = location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter(Boolean)
    .map(decodeURIComponent);
  const page = PAGES[name];
  for (const a of links) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!page) {
    view.replaceChildren(errorBox(new Error(`There is no page "${name}".`)));
    return;
  }
  document.title = `${page.title} · selfsup`;
  view.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  const ctx = {
    api,
    params,
    signal: controller.signal,
    navigate: (hash: string) => {
      location.hash = hash;
    },
  };
  try {
    await page.render(view, ctx);
  } catch (e) {
    if (controller.signal.aborted) return;
    // A key revoked while signed in: back to the sign-in form with the reason.
    if (e instanceof ApiError && e.status === 401) {
      sessionStorage.removeItem(KEY);
      showSignIn(e);
      return;
    }
    view.replaceChildren(errorBox(e));
  }
}

const saved = sessionStorage.getItem(KEY);
if (saved) showApp(saved);
else showSignIn();
