// `probe` and `evaluate`: print a metrics table and the confusion matrix.
import { unwrap } from "../client";
import { UsageError } from "./args";
import { type Ctx, need, out } from "./context";
import { confusionMatrix, table } from "./format";

export async function runProbeCommands(ctx: Ctx, group: string, args: (string | undefined)[]) {
  const c = ctx.client;
  const split = typeof ctx.flags.split === "string" ? Number(ctx.flags.split) : 0.2;
  const seed = typeof ctx.flags.seed === "string" ? Number(ctx.flags.seed) : 0;
  const data = { dataset: need(ctx, "dataset") };
  if (group === "probe") {
    const kind = (typeof ctx.flags.kind === "string" ? ctx.flags.kind : "linear") as "linear" | "knn";
    const p = await unwrap(
      c.POST("/v1/probes", { body: { model: need(ctx, "model"), kind, train: data, test: { split, seed } } }),
    );
    return out(ctx, p, () => {
      const perClass = Object.entries(p.metrics.per_class).map(([label, m]) => ({ label, ...m }));
      return [
        `${p.id}  ${p.model}  ${p.kind}  train ${p.n_train} / test ${p.n_test}`,
        `accuracy ${(p.metrics.accuracy * 100).toFixed(1)}%  macro-F1 ${(p.metrics.macro_f1 * 100).toFixed(1)}%`,
        "",
        table(perClass, ["label", "precision", "recall", "f1", "support"]),
        "",
        confusionMatrix(p.metrics.confusion.labels, p.metrics.confusion.matrix),
      ].join("\n");
    });
  }
  const models = args.filter((a): a is string => typeof a === "string");
  if (models.length === 0) throw new UsageError("evaluate needs one or more model refs");
  const e = await unwrap(c.POST("/v1/evaluations", { body: { models, data, test: { split, seed } } }));
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return out(ctx, e, () =>
    table(
      e.table.map((r) => ({
        name: r.name,
        linear: pct(r.linear.accuracy),
        knn: pct(r.knn.accuracy),
        "linear vs baseline": r.delta_vs_baseline ? `${(r.delta_vs_baseline.linear * 100).toFixed(1)} pt` : "",
        "knn vs baseline": r.delta_vs_baseline ? `${(r.delta_vs_baseline.knn * 100).toFixed(1)} pt` : "",
      })),
    ),
  );
}
