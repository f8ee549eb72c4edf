// `probe` and `evaluate`: print a metrics table and the confusion matrix (probe), or one line per
// (model, kind) with its accuracy and the gain over the raw-feature baseline (evaluate). Both read
// a dataset, so the API answers 202 and works on its queue: the CLI polls with a progress bar.
import { type SelfsupClient, unwrap } from "../client";
import { UsageError } from "./args";
import { type Ctx, need, out } from "./context";
import { confusionMatrix, ProgressBar, table } from "./format";

export const PROBE_KINDS = ["linear", "knn", "mlp"] as const;
type ProbeKind = (typeof PROBE_KINDS)[number];

/** Checks a `--kind`/`--kinds` value against the probe kinds, so a typo is a usage error, not a 400. */
export function probeKinds(raw: string, flag: string): ProbeKind[] {
  const kinds = raw
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "");
  const bad = kinds.find((k) => !(PROBE_KINDS as readonly string[]).includes(k));
  if (bad !== undefined || kinds.length === 0) {
    throw new UsageError(
      `${flag} ${raw}: use ${PROBE_KINDS.join(", ")}${flag === "--kinds" ? " (comma-separated)" : ""}`,
    );
  }
  return kinds as ProbeKind[];
}

type ResultRow = {
  model: string;
  kind: string;
  features: string;
  accuracy: number;
  macro_f1: number;
  delta_vs_baseline: number | null;
};

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** An evaluation's rows as a table: one line per (model, kind), the baseline's rows included. */
export function rowsTable(rows: ResultRow[]): string {
  return table(
    rows.map((r) => ({
      model: r.model,
      kind: r.kind,
      features: r.features,
      accuracy: pct(r.accuracy),
      "macro-F1": pct(r.macro_f1),
      "vs baseline":
        r.delta_vs_baseline === null
          ? ""
          : `${r.delta_vs_baseline >= 0 ? "+" : ""}${(r.delta_vs_baseline * 100).toFixed(1)} pt`,
    })),
  );
}

type Progress = { phase: string; items_done: number; items_total: number; model?: string | null } | null;
type Work = { id: string; status: string; progress: Progress; error: { title: string; detail: string } | null };

/** Polls `get` while the work runs, drawing the inputs embedded; throws the work's error if it failed. */
export async function waitForWork<T extends Work>(first: T, get: () => Promise<T>, label: string): Promise<T> {
  const bar = new ProgressBar(label);
  let current = first;
  for (
    let delay = 250;
    current.status === "running" || current.status === "fitting";
    delay = Math.min(2000, delay * 1.5)
  ) {
    const p = current.progress;
    if (p) {
      const what = p.phase === "embedding" ? `embedding ${p.items_done}/${p.items_total}` : p.phase;
      bar.update(p.items_total ? p.items_done / p.items_total : 0, `${what}${p.model ? ` ${p.model}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, delay));
    current = await get();
  }
  bar.done(current.status);
  if (current.status === "failed") {
    throw new Error(
      `${current.id} failed: ${current.error?.title ?? "error"}: ${current.error?.detail ?? "no detail"}`,
    );
  }
  return current;
}

const getProbe = (c: SelfsupClient, id: string) => unwrap(c.GET("/v1/probes/{id}", { params: { path: { id } } }));
const getEvaluation = (c: SelfsupClient, id: string) =>
  unwrap(c.GET("/v1/evaluations/{id}", { params: { path: { id } } }));

export async function runProbeCommands(ctx: Ctx, group: string, args: (string | undefined)[]) {
  const c = ctx.client;
  const split = typeof ctx.flags.split === "string" ? Number(ctx.flags.split) : 0.2;
  const seed = typeof ctx.flags.seed === "string" ? Number(ctx.flags.seed) : 0;
  const data = { dataset: need(ctx, "dataset") };
  if (group === "probe") {
    const [kind] = probeKinds(typeof ctx.flags.kind === "string" ? ctx.flags.kind : "linear", "--kind");
    if (typeof ctx.flags.kind === "string" && ctx.flags.kind.includes(",")) {
      throw new UsageError("--kind takes one kind; `evaluate --kinds` compares several");
    }
    const started = await unwrap(
      c.POST("/v1/probes", {
        body: { model: need(ctx, "model"), kind: kind as ProbeKind, train: data, test: { split, seed } },
      }),
    );
    const p = await waitForWork(started, () => getProbe(c, started.id), "probe    ");
    return out(ctx, p, () => {
      if (!p.metrics) return `${p.id}  ${p.status}`;
      const perClass = Object.entries(p.metrics.per_class).map(([label, m]) => ({ label, ...m }));
      return [
        `${p.id}  ${p.model}  ${p.kind}  train ${p.n_train} / test ${p.n_test}`,
        `accuracy ${pct(p.metrics.accuracy)}  macro-F1 ${pct(p.metrics.macro_f1)}`,
        "",
        table(perClass, ["label", "precision", "recall", "f1", "support"]),
        "",
        confusionMatrix(p.metrics.confusion.labels, p.metrics.confusion.matrix),
      ].join("\n");
    });
  }
  const models = args.filter((a): a is string => typeof a === "string");
  if (models.length === 0) throw new UsageError("evaluate needs one or more model refs");
  const kinds = typeof ctx.flags.kinds === "string" ? probeKinds(ctx.flags.kinds, "--kinds") : undefined;
  const started = await unwrap(
    c.POST("/v1/evaluations", { body: { models, data, test: { split, seed }, ...(kinds ? { kinds } : {}) } }),
  );
  const e = await waitForWork(started, () => getEvaluation(c, started.id), "evaluate ");
  return out(
    ctx,
    e,
    () => `${e.id}  train ${e.n_train} / test ${e.n_test}  labels ${e.labels.length}\n${rowsTable(e.rows)}`,
  );
}
