// Jobs: pretraining and fine-tuning jobs with live status, progress, ETA and throughput; a job's loss
// and eval-probe curves, metrics, events and a cancel button. Refreshes itself while a job moves.
import { ApiError } from "../api";
import { type Point, stepChart } from "../charts";
import { el, errorBox, fmtDate, fmtNum, fmtShortDate, type Page, type PageContext, showError, table } from "../page";
import { badge, refreshWhile } from "./pages_util";

export type Job = {
  id: string;
  kind: "pretrain" | "finetune";
  status: string;
  model: string;
  modelVersion: string | null;
  dataset: string;
  evalDataset: string | null;
  modality: string;
  objective: string;
  preset: string;
  hyperparameters: Record<string, unknown>;
  progress: { step: number; total: number; fraction: number; etaSeconds: number | null };
  metrics: Record<string, number> | null;
  lossCurve: Point[];
  evalCurve: Point[];
  events: { kind: string; step: number | null; at: string; data: Record<string, unknown> | null }[];
  initFrom: string | null;
  base: string | null;
  promotion: {
    candidate: { ref: string; linear: number | null };
    incumbent: { ref: string; linear: number | null } | null;
    promoted: boolean;
  } | null;
  attempts: number;
  maxAttempts: number;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
};

const PATHS = { pretrain: "/v1/pretraining/jobs", finetune: "/v1/finetuning/jobs" } as const;
const MOVING = new Set(["queued", "running"]);
const REFRESH_MS = 3000;

/** Units per second as the trainer reports them (its metrics key) in the unit of the job's modality. */
const UNITS: Record<string, { keys: string[]; unit: string }> = {
  text: { keys: ["tokens_per_second"], unit: "tokens/s" },
  image: { keys: ["images_per_second", "tokens_per_second"], unit: "images/s" },
  timeseries: { keys: ["points_per_second", "tokens_per_second"], unit: "points/s" },
};

export function throughput(job: Pick<Job, "modality" | "metrics">): string {
  const u = UNITS[job.modality] ?? { keys: ["tokens_per_second"], unit: "units/s" };
  const value = u.keys.map((k) => job.metrics?.[k]).find((v) => typeof v === "number");
  return value === undefined ? "—" : `${fmtNum(value, 3)} ${u.unit}`;
}

export function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function progressBar(job: Job): HTMLElement {
  const { step, total, fraction, etaSeconds } = job.progress;
  const eta = job.status === "running" && etaSeconds !== null ? ` · ETA ${duration(etaSeconds)}` : "";
  const text = `${step}/${total || "?"} steps${eta}`;
  return el(
    "div",
    { class: "progress" },
    el("progress", { max: 1, value: fraction, "aria-label": `${job.id} progress: ${text}` }),
    el("span", null, text),
  );
}

async function listAll(ctx: PageContext): Promise<Job[]> {
  const [pre, ft] = await Promise.all(
    (["pretrain", "finetune"] as const).map((k) => ctx.api.get<{ data: Job[] }>(PATHS[k], ctx.signal)),
  );
  return [...(pre?.data ?? []), ...(ft?.data ?? [])].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

function jobsTable(jobs: Job[]): HTMLElement {
  return table(
    jobs,
    [
      { label: "Job", value: (j) => el("a", { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id) },
      { label: "Kind", value: (j) => (j.kind === "finetune" ? "fine-tune" : "pretrain") },
      { label: "Status", value: (j) => badge(j.status) },
      { label: "Progress", value: progressBar },
      { label: "Throughput", value: (j) => throughput(j), class: "num" },
      { label: "Loss", value: (j) => fmtNum(j.metrics?.loss ?? j.metrics?.final_loss), class: "num" },
      { label: "Model", value: (j) => j.modelVersion ?? j.model },
      { label: "Objective", value: (j) => `${j.modality} · ${j.objective} · ${j.preset}` },
      { label: "Created", value: (j) => fmtShortDate(j.createdAt) },
    ],
    "No jobs yet: start one with `selfsup train` or POST /v1/pretraining/jobs.",
    { stack: true },
  );
}

async function renderList(view: HTMLElement, ctx: PageContext): Promise<void> {
  const body = el("div");
  const stamp = el("span", { class: "muted", "aria-live": "polite" });
  view.replaceChildren(el("div", { class: "page-head" }, el("h1", null, "Jobs"), stamp), body);
  const draw = async () => {
    const jobs = await listAll(ctx);
    if (ctx.signal.aborted) return false;
    body.replaceChildren(jobsTable(jobs));
    const moving = jobs.some((j) => MOVING.has(j.status));
    stamp.textContent = moving ? `refreshing every ${REFRESH_MS / 1000}s` : "";
    return moving;
  };
  if (await draw()) refreshWhile(ctx, draw, REFRESH_MS);
}

async function fetchJob(ctx: PageContext, id: string): Promise<Job> {
  const path = (k: keyof typeof PATHS) => `${PATHS[k]}/${encodeURIComponent(id)}`;
  try {
    return await ctx.api.get<Job>(path("pretrain"), ctx.signal);
  } catch (e) {
    // One id space for both kinds; the pretraining route answers 404 for a fine-tune job.
    if (e instanceof ApiError && e.status === 404) return await ctx.api.get<Job>(path("finetune"), ctx.signal);
    throw e;
  }
}

function facts(entries: [string, unknown][]): HTMLElement {
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of entries) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(el("dt", null, k), el("dd", null, v instanceof Node ? v : String(v)));
  }
  return dl;
}

function metricEntries(metrics: Record<string, number> | null): [string, unknown][] {
  return Object.entries(metrics ?? {}).map(([k, v]) => [k, fmtNum(v, 4)]);
}

function eventText(e: Job["events"][number]): string {
  const data = e.data ? Object.entries(e.data).filter(([, v]) => typeof v !== "object" || v === null) : [];
  const extra = data.map(([k, v]) => `${k} ${typeof v === "number" ? fmtNum(v, 4) : String(v)}`).join(", ");
  return `${e.kind}${e.step !== null ? ` at step ${e.step}` : ""}${extra ? ` (${extra})` : ""}`;
}

async function renderDetail(view: HTMLElement, ctx: PageContext, id: string): Promise<void> {
  let job = await fetchJob(ctx, id);
  const title = el("h1", null, `Job ${job.id}`);
  const status = el("span");
  const cancel = el("button", { type: "button", class: "danger" }, "Cancel job");
  const notice = el("div", { "aria-live": "polite" });
  const summary = el("div", { class: "panel" });
  const loss = el("div", { class: "chart", "data-chart": "loss" });
  const evals = el("div", { class: "chart", "data-chart": "eval" });
  const metrics = el("div", { class: "panel" });
  const events = el("div", { class: "panel" });
  view.replaceChildren(
    el("p", null, el("a", { href: "#/jobs" }, "← All jobs")),
    el("div", { class: "page-head" }, title, status, el("div", { class: "actions" }, cancel)),
    notice,
    summary,
    el(
      "div",
      { class: "grid" },
      el("section", { class: "panel", "aria-label": "Loss curve" }, el("h2", null, "Loss"), loss),
      el("section", { class: "panel", "aria-label": "Eval-probe curve" }, el("h2", null, "Eval probes"), evals),
    ),
    el("div", { class: "grid" }, metrics, events),
  );

  const draw = (j: Job) => {
    status.replaceChildren(badge(j.status));
    cancel.hidden = !MOVING.has(j.status);
    summary.replaceChildren(
      progressBar(j),
      facts([
        ["Kind", j.kind === "finetune" ? "fine-tune" : "pretrain"],
        [
          "Model",
          j.modelVersion ? el("a", { href: `#/models/${encodeURIComponent(j.model)}` }, j.modelVersion) : j.model,
        ],
        ["Modality", j.modality],
        ["Objective", j.objective],
        ["Preset", j.preset],
        ["Dataset", el("a", { href: `#/datasets/${encodeURIComponent(j.dataset)}` }, j.dataset)],
        [
          "Eval dataset",
          j.evalDataset ? el("a", { href: `#/datasets/${encodeURIComponent(j.evalDataset)}` }, j.evalDataset) : null,
        ],
        ["Continued from", j.initFrom],
        ["Fine-tuned from", j.base],
        ["Throughput", throughput(j)],
        ["Attempts", `${j.attempts} of ${j.maxAttempts}`],
        ["Created", fmtDate(j.createdAt)],
        ["Started", j.startedAt ? fmtDate(j.startedAt) : null],
        ["Finished", j.finishedAt ? fmtDate(j.finishedAt) : null],
        [
          "Promotion",
          j.promotion
            ? `${j.promotion.candidate.ref} ${fmtNum(j.promotion.candidate.linear)} vs ${j.promotion.incumbent?.ref ?? "none"} ${fmtNum(j.promotion.incumbent?.linear)}: ${j.promotion.promoted ? "promoted" : "kept"}`
            : null,
        ],
        [
          "Hyperparameters",
          el(
            "code",
            null,
            Object.entries(j.hyperparameters)
              .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
              .join(" "),
          ),
        ],
      ]),
    );
    if (j.error) summary.append(errorBox(new Error(j.error)));
    stepChart(loss, j.lossCurve, ["loss"], {
      yLabel: "loss",
      label: `Training loss per step of ${j.id}`,
      empty: "No loss reported yet.",
    });
    const evalKeys = [...new Set(j.evalCurve.flatMap((p) => Object.keys(p).filter((k) => k !== "step")))];
    stepChart(evals, j.evalCurve, evalKeys, {
      yLabel: "score",
      label: `Eval-probe scores per step of ${j.id}`,
      empty: j.evalDataset
        ? "No eval-probe point yet (scored at each checkpoint)."
        : "This job has no eval dataset (pass eval.dataset to score checkpoints).",
    });
    metrics.replaceChildren(
      el("h2", null, "Metrics"),
      j.metrics ? facts(metricEntries(j.metrics)) : el("p", { class: "empty" }, "None reported yet."),
    );
    events.replaceChildren(
      el("h2", null, "Events"),
      j.events.length
        ? el(
            "ol",
            { class: "events" },
            ...j.events.map((e) => el("li", null, el("time", { datetime: e.at }, fmtDate(e.at)), " — ", eventText(e))),
          )
        : el("p", { class: "empty" }, "No events yet."),
    );
  };

  cancel.addEventListener("click", async () => {
    if (!confirm(`Cancel job ${job.id}? A running job stops at its trainer's next heartbeat.`)) return;
    cancel.disabled = true;
    try {
      await ctx.api.post(`${PATHS[job.kind]}/${encodeURIComponent(job.id)}/cancel`);
      job = await fetchJob(ctx, id);
      draw(job);
      // A running job stays "running" until its trainer's next heartbeat; the refresh loop shows that.
      notice.replaceChildren(el("p", { class: "notice" }, `Cancel requested: the job is ${job.status}.`));
    } catch (e) {
      notice.replaceChildren(errorBox(e));
    } finally {
      cancel.disabled = false;
    }
  });

  const tick = async () => {
    job = await fetchJob(ctx, id);
    if (ctx.signal.aborted) return false;
    draw(job);
    return MOVING.has(job.status);
  };
  draw(job);
  if (MOVING.has(job.status)) refreshWhile(ctx, tick, REFRESH_MS);
}

export const page: Page = {
  title: "Jobs",
  async render(view, ctx) {
    try {
      const [id] = ctx.params;
      if (id) await renderDetail(view, ctx, id);
      else await renderList(view, ctx);
    } catch (e) {
      showError(view, e);
    }
  },
};
