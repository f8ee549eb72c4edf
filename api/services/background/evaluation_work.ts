// An evaluation on the work queue: one message per chunk. Each chunk re-plans the split (the plan
// is deterministic: same request, same datasets, same seed), embeds the next `chunk_items` inputs of
// the current pass into R2 and stores the cursor; then one chunk per model fits its probes, and a
// last one fits the baseline and writes the results. A chunk whose stored `step` moved on (a
// duplicate or late message) does nothing. Knows nothing of Hono.
import { and, eq, sql } from "drizzle-orm";
import { evaluations } from "../../../db/schema";
import {
  computeBaseline,
  type EvaluationPlan,
  type EvaluationRequest,
  type EvaluationState,
  planEvaluation,
  type StoredEvaluationRequest,
  scoreHead,
} from "../evaluations";
import type { Manifest } from "../manifest";
import {
  baselineResults,
  type EvaluationResults,
  fitKinds,
  type ResultRow,
  resultRows,
  type TableRow,
  tableRow,
} from "../probe/evaluate";
import { toMatrix } from "../probe/fit";
import {
  checkDatasets,
  DEFAULT_CHUNK_ITEMS,
  dropPlan,
  embedPassChunk,
  heldPlan,
  isFinal,
  loadRequest,
  type Pass,
  passVectors,
  versionById,
  workError,
} from "./probe_work_chunks";
import type { WorkDeps, WorkHandler, WorkMessage } from "./work";

type Row = typeof evaluations.$inferSelect;

/** The evaluation handler; `chunkItems` is how many inputs a new evaluation embeds per chunk. */
export function makeEvaluationWork(opts: { chunkItems?: number } = {}): WorkHandler & { chunkItems: number } {
  const chunkItems = opts.chunkItems ?? DEFAULT_CHUNK_ITEMS;
  return {
    chunkItems,
    async chunk(deps, msg) {
      const row = await deps.db.query.evaluations.findFirst({
        where: and(eq(evaluations.id, msg.id), eq(evaluations.tenantId, msg.tenantId)),
      });
      if (row?.status !== "running") return "done";
      try {
        return await advance(deps, row);
      } catch (e) {
        // The data changed under the work (a dataset deleted, a version gone): a final answer, not a retry.
        if (!isFinal(e)) throw e;
        await fail(deps, msg, e);
        return "done";
      }
    },
    giveUp: fail,
  };
}

export const evaluationWork = makeEvaluationWork();

async function fail(deps: WorkDeps, msg: WorkMessage, e: unknown) {
  dropPlan(`evaluation:${msg.id}`);
  const now = Date.now();
  await deps.db
    .update(evaluations)
    .set({ status: "failed", error: workError(e), updatedAt: now, completedAt: now })
    .where(and(eq(evaluations.id, msg.id), eq(evaluations.status, "running")));
}

/** Stores the next state unless another delivery stored one first; false when it lost. */
async function save(deps: WorkDeps, row: Row, next: EvaluationState, done?: EvaluationResults): Promise<boolean> {
  const step = (row.state as unknown as EvaluationState).step;
  const now = Date.now();
  const saved = await deps.db
    .update(evaluations)
    .set({
      state: next as unknown as Record<string, unknown>,
      updatedAt: now,
      ...(done
        ? { status: "succeeded" as const, results: done as unknown as Record<string, unknown>, completedAt: now }
        : {}),
    })
    .where(
      and(
        eq(evaluations.id, row.id),
        eq(evaluations.status, "running"),
        sql`json_extract(${evaluations.state}, '$.step') = ${step}`,
      ),
    )
    .returning({ id: evaluations.id });
  return saved.length > 0;
}

async function advance(deps: WorkDeps, row: Row): Promise<"more" | "done"> {
  const { db, storage } = deps;
  const state = row.state as unknown as EvaluationState;
  const stored = row.request as unknown as StoredEvaluationRequest;
  const ctx = { db, storage, bucket: storage.bucket, tenantId: row.tenantId };
  const models = await Promise.all(
    stored.models.map(async (m) => ({ ...m, version: await versionById(db, m.versionId) })),
  );
  const planKey = `evaluation:${row.id}`;
  const plan = await heldPlan(planKey, async () =>
    planEvaluation(ctx, models, await loadRequest<EvaluationRequest>(storage, stored.body_key)),
  );
  await checkDatasets(db, row.tenantId, [plan.datasetId, plan.testDatasetId]);
  const passOf = (i: number): Pass => {
    const p = state.passes[i] as EvaluationState["passes"][number];
    const m = models[p.model] as (typeof models)[number];
    const inputs = p.output === "logits" ? plan.split.test : plan.inputs;
    return { version: m.version, precision: m.precision, output: p.output, inputs };
  };
  const next: EvaluationState = structuredClone(state);
  next.step += 1;

  if (state.phase === "embedding") {
    const current = state.passes[state.pass] as EvaluationState["passes"][number];
    const stats = await embedPassChunk(storage, passOf(state.pass), state.offset, state.chunk_items);
    const m = next.models[current.model] as EvaluationState["models"][number];
    if (current.output === "logits") m.head_ms += stats.embed_ms;
    else {
      m.embed_ms += stats.embed_ms;
      m.cached += stats.cached;
      m.embedded += stats.embedded;
    }
    const took = Math.min(state.chunk_items, current.total - state.offset);
    next.items_done += took;
    next.offset += took;
    if (next.offset >= current.total) {
      next.pass += 1;
      next.offset = 0;
      if (next.pass >= state.passes.length) next.phase = "fitting";
    }
    return (await save(deps, row, next)) ? "more" : "done";
  }

  // Fitting: one model per chunk, then the baseline and the results.
  const at = state.models.findIndex((m) => m.results === null);
  if (at >= 0) {
    const results = await fitModel(deps, plan, state, at, passOf);
    (next.models[at] as EvaluationState["models"][number]).results = results;
    return (await save(deps, row, next)) ? "more" : "done";
  }
  const lead = (models[0] as (typeof models)[number]).version;
  const { kind, result: baseline } = await computeBaseline(lead, plan);
  const rows: ResultRow[] = [];
  const table: TableRow[] = [];
  for (const m of state.models) {
    const results = m.results ?? [];
    rows.push(...resultRows(m.name, "embeddings", results, baseline));
    table.push(tableRow(m.name, "embeddings", results, baseline, m.embed_ms));
  }
  const base = baselineResults(baseline);
  rows.push(...resultRows(kind, kind, base, null));
  table.push(tableRow(kind, kind, base, null, 0));
  const results: EvaluationResults = {
    labels: plan.names,
    n_train: plan.split.train.length,
    n_test: plan.split.test.length,
    split: plan.splitSpec,
    kinds: [...plan.kinds],
    rows,
    table,
    baseline: { kind, features: baseline.features },
  };
  next.phase = "done";
  await save(deps, row, next, results);
  dropPlan(planKey);
  // The body was only the consumer's; the results hold what a reader needs.
  await storage.delete([stored.body_key]).catch(() => {});
  return "done";
}

/** One model's probes on its stored embeddings (and a fine-tuned head on its stored logits). */
async function fitModel(
  deps: WorkDeps,
  plan: EvaluationPlan,
  state: EvaluationState,
  model: number,
  passOf: (i: number) => Pass,
) {
  const n = plan.split.train.length;
  const at = state.passes.findIndex((p) => p.model === model && p.output === "embedding");
  const pass = passOf(at);
  const vectors = await passVectors(deps.storage, pass, state.chunk_items);
  const train = { X: toMatrix(vectors.slice(0, n)), labels: plan.split.train.map((e) => e.label) };
  const test = { X: toMatrix(vectors.slice(n)), labels: plan.split.test.map((e) => e.label) };
  const results = await fitKinds(plan.kinds, train, test, plan.options);
  const head = (pass.version.manifest as Manifest).head;
  if (head) {
    const logitsAt = state.passes.findIndex((p) => p.model === model && p.output === "logits");
    const logits = await passVectors(deps.storage, passOf(logitsAt), state.chunk_items);
    const m = state.models[model] as EvaluationState["models"][number];
    results.push(scoreHead(logits, head, plan, m.head_ms));
  }
  return results;
}
