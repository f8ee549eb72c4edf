// A probe over datasets on the work queue: chunks embed the split's inputs into R2 (the cursor in
// the row's `state`), then one chunk fits the probe with turns of the event loop, stores its
// weights and marks the row `ready`. Every chunk re-plans the split from the stored request (same
// datasets, same seed: the same split). Knows nothing of Hono.
import { and, eq, sql } from "drizzle-orm";
import { probes } from "../../../db/schema";
import { fitProbeAsync, toMatrix } from "../probe/fit";
import {
  fittedColumns,
  type ProbeFitState,
  type ProbeRequest,
  planProbe,
  type StoredProbeRequest,
} from "../probe_runs";
import { storeWeights, weightsKey } from "../probes";
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

type Row = typeof probes.$inferSelect;

/** The probe-fit handler; `chunkItems` is how many inputs a new fit embeds per chunk. */
export function makeProbeFitWork(opts: { chunkItems?: number } = {}): WorkHandler & { chunkItems: number } {
  const chunkItems = opts.chunkItems ?? DEFAULT_CHUNK_ITEMS;
  return {
    chunkItems,
    async chunk(deps, msg) {
      const row = await deps.db.query.probes.findFirst({
        where: and(eq(probes.id, msg.id), eq(probes.tenantId, msg.tenantId)),
      });
      if (row?.status !== "fitting") return "done";
      try {
        return await advance(deps, row);
      } catch (e) {
        // The data changed under the work (a dataset deleted or altered): a final answer, not a retry.
        if (!isFinal(e)) throw e;
        await fail(deps, msg, e);
        return "done";
      }
    },
    giveUp: fail,
  };
}

export const probeFitWork = makeProbeFitWork();

async function fail(deps: WorkDeps, msg: WorkMessage, e: unknown) {
  dropPlan(`probe:${msg.id}`);
  await deps.db
    .update(probes)
    .set({ status: "failed", error: workError(e), updatedAt: Date.now() })
    .where(and(eq(probes.id, msg.id), eq(probes.status, "fitting")));
}

/** Stores the next state (and any finished columns) unless another delivery stored one first. */
async function save(deps: WorkDeps, row: Row, next: ProbeFitState, done?: Partial<typeof probes.$inferInsert>) {
  const step = (row.state as unknown as ProbeFitState).step;
  const saved = await deps.db
    .update(probes)
    .set({ state: next as unknown as Record<string, unknown>, updatedAt: Date.now(), ...(done ?? {}) })
    .where(
      and(eq(probes.id, row.id), eq(probes.status, "fitting"), sql`json_extract(${probes.state}, '$.step') = ${step}`),
    )
    .returning({ id: probes.id });
  return saved.length > 0;
}

async function advance(deps: WorkDeps, row: Row): Promise<"more" | "done"> {
  const { db, storage } = deps;
  const state = row.state as unknown as ProbeFitState;
  const stored = row.request as unknown as StoredProbeRequest;
  const version = await versionById(db, stored.versionId);
  const ctx = { db, storage, bucket: storage.bucket, tenantId: row.tenantId };
  const planKey = `probe:${row.id}`;
  const plan = await heldPlan(planKey, async () =>
    planProbe(ctx, version, stored.ref, await loadRequest<ProbeRequest>(storage, stored.body_key)),
  );
  await checkDatasets(db, row.tenantId, [plan.trainDatasetId, plan.testDatasetId]);
  const pass: Pass = {
    version,
    precision: stored.precision,
    output: "embedding",
    inputs: [...plan.split.train, ...plan.split.test],
  };
  const next: ProbeFitState = { ...state, step: state.step + 1 };
  if (state.phase === "embedding") {
    const stats = await embedPassChunk(storage, pass, state.offset, state.chunk_items);
    const took = Math.min(state.chunk_items, state.items_total - state.offset);
    next.offset += took;
    next.items_done += took;
    next.embed_ms += stats.embed_ms;
    next.cached += stats.cached;
    next.embedded += stats.embedded;
    if (next.offset >= state.items_total) next.phase = "fitting";
    return (await save(deps, row, next)) ? "more" : "done";
  }
  const vectors = await passVectors(storage, pass, state.chunk_items);
  const n = plan.split.train.length;
  const fit = await fitProbeAsync(
    row.kind,
    { X: toMatrix(vectors.slice(0, n)), labels: plan.split.train.map((e) => e.label) },
    { X: toMatrix(vectors.slice(n)), labels: plan.split.test.map((e) => e.label) },
    plan.options,
  );
  const key = weightsKey(row.tenantId, row.id);
  await storeWeights(storage, key, fit.weights);
  next.phase = "done";
  dropPlan(planKey);
  await save(deps, row, next, {
    status: "ready",
    ...fittedColumns(fit, plan, stored.precision, key, state),
  });
  await storage.delete([stored.body_key]).catch(() => {});
  return "done";
}
