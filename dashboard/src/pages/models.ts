// Models: each model's versions with their lineage (dataset, objective, preset, continued or fine-tuned
// from, metrics, isotropy), its aliases and their history, a form that moves an alias (promote or roll
// back), and copyable curl / OpenAI SDK snippets.
import { el, errorBox, fmtDate, fmtNum, fmtShortDate, type Page, type PageContext, showError, table } from "../page";

type Model = {
  id: string;
  created: number;
  modality: string;
  versions: number;
  aliases: Record<string, number>;
};

type Version = {
  id: string;
  model: string;
  version: number;
  ref: string;
  modality: string;
  dims: number;
  source: "import" | "training";
  jobId: string | null;
  datasetId: string | null;
  initFrom: string | null;
  finetunedFrom: string | null;
  head: { labels: string[] } | null;
  aliases: string[];
  manifest: Record<string, unknown>;
  createdAt: string;
};

type AliasEvent = { alias: string; from: number | null; to: number; reason: string | null; createdAt: string };

const modelPath = (name: string) => `/v1/models/${encodeURIComponent(name)}`;

function aliasBadges(aliases: string[]): HTMLElement {
  return el("span", null, ...aliases.map((a) => el("span", { class: "badge alias" }, a)));
}

async function renderList(view: HTMLElement, ctx: PageContext): Promise<void> {
  const { data } = await ctx.api.get<{ data: Model[] }>("/v1/models", ctx.signal);
  view.replaceChildren(
    el("div", { class: "page-head" }, el("h1", null, "Models")),
    table(
      [...data].sort((a, b) => a.id.localeCompare(b.id)),
      [
        { label: "Model", value: (m) => el("a", { href: `#/models/${encodeURIComponent(m.id)}` }, m.id) },
        { label: "Modality", value: (m) => m.modality },
        { label: "Versions", value: (m) => m.versions, class: "num" },
        {
          label: "Aliases",
          value: (m) =>
            aliasBadges(
              Object.entries(m.aliases)
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([a, v]) => `${a} → ${v}`),
            ),
          class: "wrap",
        },
        { label: "Created", value: (m) => fmtShortDate(new Date(m.created * 1000).toISOString()) },
      ],
      "No models yet: train one or import one with `selfsup models import`.",
      { stack: true },
    ),
  );
}

const num = (v: unknown) => (typeof v === "number" ? v : null);

/** Mean pairwise cosine of the served embeddings (text): near 0 is isotropic, near 1 collapsed. */
export function isotropy(manifest: Record<string, unknown>): number | null {
  const metrics = (manifest.metrics ?? {}) as Record<string, unknown>;
  const iso = (manifest.isotropy ?? {}) as Record<string, unknown>;
  return num(metrics.mean_pairwise_cosine) ?? num(iso.mean_pairwise_cosine);
}

/** The manifest's numeric metrics as chips (isotropy has its own line). */
function metricChips(manifest: Record<string, unknown>): HTMLElement {
  const metrics = Object.entries((manifest.metrics ?? {}) as Record<string, unknown>).filter(
    ([k, v]) => typeof v === "number" && k !== "mean_pairwise_cosine" && k !== "steps",
  );
  if (!metrics.length) return el("span", { class: "muted" }, "none");
  return el(
    "ul",
    { class: "chips" },
    ...metrics.map(([k, v]) => el("li", null, el("span", { class: "muted" }, k), " ", fmtNum(v as number, 3))),
  );
}

function lineage(v: Version): HTMLElement | string {
  const from = v.finetunedFrom ?? v.initFrom;
  if (!from) return v.source === "import" ? "imported" : "from scratch";
  return `${v.finetunedFrom ? "fine-tuned from" : "continued from"} ${from}`;
}

/** One card per version (a table this wide would scroll sideways on a phone). */
function versionCards(versions: Version[]): HTMLElement {
  return el(
    "div",
    { class: "grid versions" },
    ...versions.map((v) =>
      el(
        "article",
        { class: "panel version", "aria-label": v.ref },
        el("h3", null, v.ref, " ", aliasBadges(v.aliases)),
        el(
          "dl",
          { class: "facts" },
          el("dt", null, "Source"),
          el("dd", null, v.jobId ? el("a", { href: `#/jobs/${v.jobId}` }, `${v.source} (${v.jobId})`) : v.source),
          el("dt", null, "Dataset"),
          el(
            "dd",
            null,
            v.datasetId ? el("a", { href: `#/datasets/${encodeURIComponent(v.datasetId)}` }, v.datasetId) : "—",
          ),
          el("dt", null, "Objective · preset"),
          el("dd", null, `${String(v.manifest.objective ?? "—")} · ${String(v.manifest.preset ?? "—")}`),
          el("dt", null, "Lineage"),
          el("dd", null, lineage(v)),
          el("dt", null, "Dims"),
          el("dd", null, String(v.dims)),
          el("dt", { title: "mean pairwise cosine of served embeddings: near 0 is isotropic" }, "Isotropy"),
          el("dd", null, isotropy(v.manifest) === null ? "—" : `mean cosine ${fmtNum(isotropy(v.manifest), 3)}`),
          v.head ? el("dt", null, "Head") : null,
          v.head ? el("dd", null, `${v.head.labels.length} labels: ${v.head.labels.join(", ")}`) : null,
          el("dt", null, "Metrics"),
          el("dd", null, metricChips(v.manifest)),
          el("dt", null, "Created"),
          el("dd", null, fmtDate(v.createdAt)),
        ),
      ),
    ),
  );
}

/** A snippet shown as text with a Copy button (navigator.clipboard; the text stays selectable). */
function snippet(label: string, text: string): HTMLElement {
  const status = el("span", { class: "muted", "aria-live": "polite" });
  const copy = el("button", { type: "button", class: "secondary copy" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = "Copied.";
    } catch {
      status.textContent = "Copy failed: select the text instead.";
    }
  });
  return el(
    "div",
    { class: "snippet" },
    el("div", { class: "snippet-head" }, el("h3", null, label), el("span", null, status, " ", copy)),
    el("pre", { tabindex: "0", "aria-label": label }, el("code", null, text)),
  );
}

export function snippets(origin: string, ref: string, modality: string): { curl: string; openai: string } {
  const input = modality === "text" ? '"The whale surfaced."' : '"<base64 image or series, see /docs>"';
  const curl = [
    `curl ${origin}/v1/embeddings \\`,
    `  -H "Authorization: Bearer $SELFSUP_API_KEY" \\`,
    `  -H "content-type: application/json" \\`,
    `  -d '{"model": "${ref}", "input": [${input}]}'`,
  ].join("\n");
  const openai = [
    "import os",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${origin}/v1", api_key=os.environ["SELFSUP_API_KEY"])`,
    `res = client.embeddings.create(model="${ref}", input=[${input}])`,
    "print(len(res.data[0].embedding))",
  ].join("\n");
  return { curl, openai };
}

async function renderDetail(view: HTMLElement, ctx: PageContext, name: string): Promise<void> {
  const versionsBox = el("div");
  const aliasesBox = el("div");
  const formBox = el("div");
  const snippetsBox = el("div");
  const head = el("h1", null, name);
  const meta = el("span", { class: "muted" });
  view.replaceChildren(
    el("p", null, el("a", { href: "#/models" }, "← All models")),
    el("div", { class: "page-head" }, head, meta),
    el("section", { "aria-label": "Versions" }, el("h2", null, "Versions"), versionsBox),
    el(
      "div",
      { class: "grid" },
      el("section", { class: "panel", "aria-label": "Aliases" }, el("h2", null, "Aliases and history"), aliasesBox),
      el("section", { class: "panel", "aria-label": "Move an alias" }, el("h2", null, "Move an alias"), formBox),
    ),
    el("section", { class: "panel", "aria-label": "Use it" }, el("h2", null, "Use it"), snippetsBox),
  );

  const load = async () => {
    const model = await ctx.api.get<Model & { data: Version[] }>(modelPath(name), ctx.signal);
    const aliases = Object.keys(model.aliases).sort((a, b) =>
      a === "latest" ? -1 : b === "latest" ? 1 : a.localeCompare(b),
    );
    const histories = await Promise.all(
      aliases.map((a) =>
        ctx.api
          .get<{ data: AliasEvent[] }>(`${modelPath(name)}/aliases/${encodeURIComponent(a)}/history`, ctx.signal)
          .then((h) => h.data),
      ),
    );
    return { model, aliases, histories };
  };

  const draw = ({ model, aliases, histories }: Awaited<ReturnType<typeof load>>) => {
    meta.textContent = `${model.modality} · ${model.versions} version${model.versions === 1 ? "" : "s"}`;
    versionsBox.replaceChildren(versionCards(model.data));
    aliasesBox.replaceChildren(
      aliases.length
        ? el(
            "div",
            null,
            ...aliases.map((a, i) =>
              el(
                "div",
                { class: "alias-history" },
                el("h3", null, el("span", { class: "badge alias" }, a), ` → ${name}@${model.aliases[a]}`),
                el(
                  "ol",
                  { class: "events", "data-history": a, "aria-label": `History of ${a}` },
                  ...(histories[i] ?? []).map((e) =>
                    el(
                      "li",
                      null,
                      `${e.from === null ? "set to" : `v${e.from} →`} v${e.to}`,
                      e.reason ? ` — “${e.reason}”` : "",
                      el("span", { class: "muted" }, ` · ${fmtDate(e.createdAt)}`),
                    ),
                  ),
                ),
              ),
            ),
          )
        : el("p", { class: "empty" }, "No aliases."),
    );
    const ref = model.aliases.production !== undefined ? `${name}@production` : name;
    const origin = new URLSearchParams(location.search).get("api") ?? location.origin;
    const s = snippets(origin, ref, model.modality);
    snippetsBox.replaceChildren(
      el(
        "p",
        { class: "muted" },
        `Embeddings from ${ref} (an alias resolves to its version on each request; set SELFSUP_API_KEY first).`,
      ),
      snippet("curl", s.curl),
      snippet("OpenAI SDK (Python)", s.openai),
    );
  };

  let state = await load();
  draw(state);
  formBox.replaceChildren(
    aliasForm(ctx, name, state, async () => {
      state = await load();
      draw(state);
      return state;
    }),
  );
}

function aliasForm(
  ctx: PageContext,
  name: string,
  initial: { model: Model & { data: Version[] }; aliases: string[] },
  reload: () => Promise<{ model: Model & { data: Version[] } }>,
): HTMLElement {
  const suggested = initial.aliases.find((a) => a !== "latest") ?? "production";
  const aliasInput = el("input", {
    id: "alias-name",
    name: "alias",
    required: true,
    value: suggested,
    list: "alias-options",
    autocomplete: "off",
  });
  const options = el("datalist", { id: "alias-options" }, ...initial.aliases.map((a) => el("option", { value: a })));
  const versionSelect = el(
    "select",
    { id: "alias-version", name: "version" },
    ...initial.model.data.map((v) => el("option", { value: v.version }, v.ref)),
  );
  const reason = el("input", { id: "alias-reason", name: "reason", maxlength: 500, placeholder: "why (optional)" });
  const status = el("div", { "aria-live": "polite" });
  const submit = el("button", { type: "submit" }, "Move alias");
  const form = el(
    "form",
    { class: "alias-form" },
    el(
      "div",
      { class: "form-row" },
      el("div", { class: "field" }, el("label", { for: "alias-name" }, "Alias"), aliasInput),
      el("div", { class: "field" }, el("label", { for: "alias-version" }, "Version"), versionSelect),
      el("div", { class: "field" }, el("label", { for: "alias-reason" }, "Reason"), reason),
      submit,
    ),
    options,
    status,
    el("p", { class: "muted" }, "Promote: point the alias at a newer version. Roll back: point it at an older one."),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const alias = aliasInput.value.trim();
    const version = Number(versionSelect.value);
    submit.disabled = true;
    status.replaceChildren(el("p", { class: "muted" }, `Moving ${alias}…`));
    try {
      await ctx.api.put(`${modelPath(name)}/aliases/${encodeURIComponent(alias)}`, {
        version,
        ...(reason.value.trim() ? { reason: reason.value.trim() } : {}),
      });
      const { model } = await reload();
      options.replaceChildren(...Object.keys(model.aliases).map((a) => el("option", { value: a })));
      status.replaceChildren(el("p", { class: "notice" }, `${alias} now points at ${name}@${version}.`));
      reason.value = "";
    } catch (e) {
      status.replaceChildren(errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export const page: Page = {
  title: "Models",
  async render(view, ctx) {
    try {
      const [name] = ctx.params;
      if (name) await renderDetail(view, ctx, name);
      else await renderList(view, ctx);
    } catch (e) {
      showError(view, e);
    }
  },
};
