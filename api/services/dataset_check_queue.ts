// The request side of the background dataset check: claim the dataset for one check and enqueue
// it (POST /complete), or enqueue it again when its check looks dead. The work itself is
// background/dataset_check_work.ts.
import { and, eq, lt } from "drizzle-orm";
import { datasets } from "../../db/schema";
import type { Db } from "../db";
import { enqueue, type WorkMessage } from "./background/work";
import { type CheckProgress, resumable } from "./dataset_check_state";
import type { ObjectVersion } from "./datasets";

type DatasetRow = typeof datasets.$inferSelect;

/**
 * A check whose row has not moved for this long lost its message (a local queue that restarted, a
 * consumer that died past its retries without giving up); /complete then enqueues it again. Each
 * step writes the row (a one-go check every few MiB), so a live check never looks this old.
 */
export const STALE_CHECK_MS = 5 * 60 * 1000;

const message = (d: DatasetRow): WorkMessage => ({ kind: "dataset_check", tenantId: d.tenantId, id: d.id });

/**
 * Claims an `uploading` dataset for a check of version `v` and enqueues it.
 *
 * Returns: the row, now `validating`, or null when another request claimed it first.
 */
export async function startCheck(
  db: Db,
  work: Queue<WorkMessage>,
  d: DatasetRow,
  v: ObjectVersion,
): Promise<DatasetRow | null> {
  const state: CheckProgress = {
    etag: v.etag,
    size: v.size,
    resumable: resumable(d),
    bytes_done: 0,
    bytes_total: v.size,
    started_at: Date.now(),
    chunks: 0,
  };
  const [row] = await db
    .update(datasets)
    .set({ status: "validating", checkState: state, errors: null, updatedAt: Date.now() })
    .where(and(eq(datasets.id, d.id), eq(datasets.status, "uploading")))
    .returning();
  if (!row) return null;
  try {
    await enqueue(work, message(row));
  } catch (e) {
    // Not enqueued means nobody will check it: give the upload back so /complete can be retried.
    await db
      .update(datasets)
      .set({ status: "uploading", checkState: null, updatedAt: Date.now() })
      .where(eq(datasets.id, d.id));
    throw e;
  }
  return row;
}

/**
 * Enqueues the check of a `validating` dataset again when its row has not moved for
 * STALE_CHECK_MS; only one caller wins the re-claim. Resumable checks go on from their cursor.
 *
 * Returns: whether a message was sent.
 */
export async function restartIfStale(db: Db, work: Queue<WorkMessage>, d: DatasetRow): Promise<boolean> {
  const now = Date.now();
  const claimed = await db
    .update(datasets)
    .set({ updatedAt: now })
    .where(and(eq(datasets.id, d.id), eq(datasets.status, "validating"), lt(datasets.updatedAt, now - STALE_CHECK_MS)))
    .returning({ id: datasets.id });
  if (claimed.length === 0) return false;
  await enqueue(work, message(d));
  return true;
}
