// Queued work whose message was lost (issue 15): `wrangler dev` restarted with the local queue in
// memory, a consumer died past its retries before `giveUp` could write. Nothing would ever advance
// such a row, so reading it (GET of the evaluation or probe, or their lists) sends its message
// again once the row has not moved for longer than any live chunk takes. The re-send is claimed
// with a compare-and-set on `updated_at`, so concurrent readers send one message; a message that
// arrives next to a live one only repeats an idempotent chunk. Knows nothing of Hono.
import { and, eq, isNull } from "drizzle-orm";
import { evaluations, probes } from "../../../db/schema";
import type { Db } from "../../db";
import { enqueue, type WorkMessage } from "./work";

/**
 * Idle time after which a row still embedding counts as lost. An embedding chunk (128 inputs, ~1-4 s,
 * plus reading the set again on an isolate that did not hold its plan) and the queue's retry backoff
 * (1 + 2 + 4 + 8 s) stay far below it; every stored chunk moves `updated_at`.
 */
export const STALE_EMBEDDING_MS = 2 * 60_000;

/**
 * Idle time after which a row fitting counts as lost. One fit chunk (an MLP on the largest set is about
 * a minute of CPU; an evaluation fits every kind of one model per chunk) moves `updated_at` only when
 * it ends, and the consumer is stopped at wrangler.toml's `cpu_ms` (5 minutes): twice that.
 */
export const STALE_FITTING_MS = 10 * 60_000;

/** Lost rows a list call sends again: a list reads many rows and must stay a cheap read. */
export const MAX_RECOVERED_PER_LIST = 3;

/** What the check reads of an evaluation or probe row. */
export type WorkRow = {
  id: string;
  tenantId: string;
  status: string;
  state: Record<string, unknown> | null;
  updatedAt: number | null;
};

type Kind = "evaluation" | "probe_fit";

/** The status each kind of row keeps while the queue works on it. */
const WORKING: Record<Kind, string> = { evaluation: "running", probe_fit: "fitting" };

/** How long `row` may sit still before it counts as lost: longer while a fit chunk may be running. */
export function staleWindow(row: WorkRow): number {
  return row.state?.phase === "embedding" ? STALE_EMBEDDING_MS : STALE_FITTING_MS;
}

/** Whether a row of `kind` is still being worked on but has not moved for its window at `now`. */
export function isStale(kind: Kind, row: WorkRow, now: number): boolean {
  if (row.status !== WORKING[kind]) return false;
  // Rows written before the queue kept `updated_at` have none: nothing can be advancing them either.
  return row.updatedAt === null || now - row.updatedAt > staleWindow(row);
}

/**
 * Moves `updated_at` from the value this reader saw to `to`; of concurrent readers of the same row
 * only one matches. `from` null matches a row that never had one.
 */
async function setUpdatedAt(db: Db, kind: Kind, row: WorkRow, from: number | null, to: number | null) {
  if (kind === "evaluation") {
    const t = evaluations;
    const seen = from === null ? isNull(t.updatedAt) : eq(t.updatedAt, from);
    const done = await db
      .update(t)
      .set({ updatedAt: to })
      .where(and(eq(t.id, row.id), eq(t.status, "running"), seen))
      .returning({ id: t.id });
    return done.length > 0;
  }
  const t = probes;
  const seen = from === null ? isNull(t.updatedAt) : eq(t.updatedAt, from);
  const done = await db
    .update(t)
    .set({ updatedAt: to })
    .where(and(eq(t.id, row.id), eq(t.status, "fitting"), seen))
    .returning({ id: t.id });
  return done.length > 0;
}

/**
 * Sends the message of a lost row again.
 *
 * @param kind which work the row belongs to.
 * @param row the row as this reader read it (its `updated_at` is the compare-and-set's expected value).
 * @param now the clock, in ms since the epoch.
 * @returns whether this call sent a message: false for a live, finished or already re-claimed row,
 *   and when the queue refused (the claim is undone, so the next read tries again; the read itself
 *   still answers).
 */
export async function recoverIfStale(
  db: Db,
  queue: Queue<WorkMessage>,
  kind: Kind,
  row: WorkRow,
  now: number,
): Promise<boolean> {
  if (!isStale(kind, row, now)) return false;
  if (!(await setUpdatedAt(db, kind, row, row.updatedAt, now))) return false;
  const msg: WorkMessage = { kind, tenantId: row.tenantId, id: row.id };
  try {
    await enqueue(queue, msg);
  } catch (e) {
    await setUpdatedAt(db, kind, row, now, row.updatedAt);
    console.error(
      JSON.stringify({
        level: "error",
        msg: "stale work not re-enqueued",
        kind,
        id: row.id,
        error: e instanceof Error ? e.message : String(e),
      }),
    );
    return false;
  }
  console.warn(
    JSON.stringify({
      level: "warn",
      msg: "stale work re-enqueued",
      kind,
      id: row.id,
      idle_ms: row.updatedAt === null ? null : now - row.updatedAt,
      phase: row.state?.phase ?? null,
    }),
  );
  return true;
}

/**
 * Sends the lost rows among `rows` again, at most MAX_RECOVERED_PER_LIST of them (the newest first,
 * in the list's order); the rest wait for the next read.
 *
 * @returns how many messages were sent.
 */
export async function recoverStaleRows(
  db: Db,
  queue: Queue<WorkMessage>,
  kind: Kind,
  rows: readonly WorkRow[],
  now: number,
): Promise<number> {
  const lost = rows.filter((r) => isStale(kind, r, now)).slice(0, MAX_RECOVERED_PER_LIST);
  let sent = 0;
  for (const row of lost) if (await recoverIfStale(db, queue, kind, row, now)) sent++;
  return sent;
}
