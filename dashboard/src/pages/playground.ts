// Playground: pick a model, give it a few inputs in its modality (texts one per line; image files;
// series as comma-separated numbers, one per line), embed them, and see their cosine similarities as
// a heat map with the values written in.
import "./pages.css";
import { el, errorBox, type Page, type PageContext, showError } from "../page";
import { heatmap } from "./pages_charts";
import { section } from "./pages_util";

type Model = { id: string; modality: "text" | "image" | "timeseries"; aliases: Record<string, number> };
type Info = { model: string; modality: Model["modality"]; dims: number; preprocessing: Record<string, unknown> };
type Embeddings = { data: { index: number; embedding: number[] }[]; model: string };

export const MAX_ITEMS = 16;

/** Cosine similarity of every pair (vectors need not be normalized; a zero vector scores 0). */
export function cosineMatrix(vectors: number[][]): number[][] {
  const norms = vectors.map((v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)));
  return vectors.map((a, i) =>
    vectors.map((b, j) => {
      const d = (norms[i] as number) * (norms[j] as number);
      return d > 0 ? a.reduce((s, x, k) => s + x * (b[k] as number), 0) / d : 0;
    }),
  );
}

/** A series line: comma-separated finite numbers, or the reason it is not one. */
export function parseSeries(line: string, n: number): number[] | string {
  const cells = line.split(",").map((c) => c.trim());
  const values = cells.map(Number);
  const bad = cells.findIndex((c, i) => c === "" || !Number.isFinite(values[i]));
  return bad >= 0 ? `line ${n}: "${cells[bad]}" is not a number` : values;
}

function readDataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error(`could not read ${file.name}`));
    r.readAsDataURL(file);
  });
}

type Inputs = { input: unknown[]; names: string[] } | { problem: string };

/** The inputs for the chosen modality, or why they cannot be sent. */
async function collect(
  modality: Model["modality"],
  text: HTMLTextAreaElement,
  files: HTMLInputElement,
): Promise<Inputs> {
  if (modality === "image") {
    const list = [...(files.files ?? [])];
    if (list.length === 0) return { problem: "Choose one or more PNG or JPEG files." };
    if (list.length > MAX_ITEMS) return { problem: `At most ${MAX_ITEMS} images at a time.` };
    return { input: await Promise.all(list.map(readDataUrl)), names: list.map((f) => f.name) };
  }
  const lines = text.value
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (lines.length === 0)
    return { problem: modality === "text" ? "Enter one text per line." : "Enter one series per line." };
  if (lines.length > MAX_ITEMS)
    return { problem: `At most ${MAX_ITEMS} inputs at a time; you entered ${lines.length}.` };
  if (modality === "text") return { input: lines, names: lines };
  const series: number[][] = [];
  for (const [i, l] of lines.entries()) {
    const s = parseSeries(l, i + 1);
    if (typeof s === "string") return { problem: `${s}; write numbers separated by commas.` };
    series.push(s);
  }
  return { input: series, names: series.map((s, i) => `series ${i + 1} (${s.length} points)`) };
}

const short = (s: string) => (s.length > 24 ? `${s.slice(0, 22)}…` : s);

async function render(view: HTMLElement, ctx: PageContext): Promise<void> {
  const { data: models } = await ctx.api.get<{ data: Model[] }>("/v1/models", ctx.signal);
  if (ctx.signal.aborted) return;
  view.replaceChildren(el("div", { class: "page-head" }, el("h1", null, "Playground")));
  if (models.length === 0) {
    view.append(el("p", { class: "empty" }, "No models yet: import or train one first."));
    return;
  }
  const select = el(
    "select",
    { id: "pg-model", name: "model" },
    ...models.map((m) => el("option", { value: m.id }, `${m.id} (${m.modality})`)),
  );
  const about = el("p", { class: "muted", "aria-live": "polite" });
  const text = el("textarea", { id: "pg-text", name: "inputs", spellcheck: false });
  const textLabel = el("label", { for: "pg-text" }, "Inputs");
  const files = el("input", {
    id: "pg-files",
    name: "files",
    type: "file",
    accept: "image/png,image/jpeg",
    multiple: true,
  });
  const filesLabel = el("label", { for: "pg-files" }, "Images (PNG or JPEG)");
  const textBox = el("div", null, textLabel, text);
  const fileBox = el("div", { class: "files" }, filesLabel, files);
  const button = el("button", { type: "submit" }, "Embed");
  const out = el("div", { "aria-live": "polite" });
  const heat = el("div", { class: "chart scroll", "data-chart": "similarity" });
  let modality: Model["modality"] = "text";

  const chooseModel = async () => {
    const m = models.find((x) => x.id === select.value) as Model;
    modality = m.modality;
    // A matrix belongs to the model that made it.
    out.replaceChildren();
    heat.replaceChildren();
    textBox.hidden = modality === "image";
    fileBox.hidden = modality !== "image";
    textLabel.textContent =
      modality === "text" ? "Texts, one per line" : "Series, one per line (comma-separated numbers)";
    text.placeholder =
      modality === "text" ? "Call me Ishmael.\nThe whale!\nA cup of tea." : "0.1, 0.4, 0.9, 0.4\n0.2, 0.5, 1.0, 0.3";
    about.textContent = `${m.id}: ${m.modality} encoder.`;
    try {
      const info = await ctx.api.get<Info>(`/v1/models/${encodeURIComponent(m.id)}/info`, ctx.signal);
      if (select.value !== m.id) return;
      modality = info.modality;
      const pre = info.preprocessing;
      const extra =
        info.modality === "image"
          ? ` Images are resized to ${pre.image_size}×${pre.image_size}, ${pre.channels} channel(s).`
          : info.modality === "timeseries"
            ? ` Series longer than ${pre.max_length ?? "its maximum"} points are cut.`
            : "";
      about.textContent = `${info.model}: ${info.modality} encoder, ${info.dims} dimensions.${extra}`;
    } catch (e) {
      if (!ctx.signal.aborted) about.replaceChildren(errorBox(e));
    }
  };
  select.addEventListener("change", () => void chooseModel());

  const form = el(
    "form",
    { class: "playground panel", "aria-label": "Embed inputs" },
    el("div", { class: "controls" }, el("label", { for: "pg-model" }, "Model", select)),
    about,
    textBox,
    fileBox,
    el("p", null, button),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const got = await collect(modality, text, files);
    if ("problem" in got) {
      out.replaceChildren(el("div", { class: "error", role: "alert" }, got.problem));
      heat.replaceChildren();
      return;
    }
    button.disabled = true;
    out.replaceChildren(el("p", { class: "muted" }, `Embedding ${got.input.length} input(s)…`));
    try {
      const res = await ctx.api.post<Embeddings>("/v1/embeddings", { model: select.value, input: got.input });
      if (ctx.signal.aborted) return;
      const vectors = [...res.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
      const labels = got.names.map((n, i) => `${i + 1}. ${short(n)}`);
      out.replaceChildren(
        el(
          "p",
          { class: "muted" },
          `${vectors.length} embeddings of ${vectors[0]?.length ?? 0} dimensions from ${res.model}.`,
        ),
      );
      heatmap(heat, cosineMatrix(vectors), {
        rows: labels,
        // Columns by number: the rows already name each input.
        cols: labels.map((_, i) => String(i + 1)),
        xLabel: null,
        yLabel: null,
        label: `Cosine similarity between the ${vectors.length} inputs`,
        format: (v) => v.toFixed(2),
        domain: [-1, 1],
        scheme: "rdbu",
        diverging: true,
      });
    } catch (e) {
      if (!ctx.signal.aborted) {
        out.replaceChildren(errorBox(e));
        heat.replaceChildren();
      }
    } finally {
      button.disabled = false;
    }
  });
  view.append(form, section("Cosine similarity", out, heat));
  await chooseModel();
}

export const page: Page = {
  title: "Playground",
  async render(view, ctx) {
    try {
      await render(view, ctx);
    } catch (e) {
      showError(view, e);
    }
  },
};
