// The work queue's contract (issue 15): long work (dataset checks, probe fits over datasets,
// evaluations) runs as Cloudflare Queues messages, one bounded chunk per invocation. Each resource
// row keeps its own status and a resumable cursor, so a consumer that dies mid-chunk is retried by
// the queue and resumes from the last stored cursor. Knows nothing of Hono.
import type { Db } from "../../db";
import type { Settings } from "../../settings";
import type { Storage } from "../storage";

export type WorkKind = "dataset_check" | "probe_fit" | "evaluation";

/** One message: which resource to advance. The cursor lives on the row, never in the message. */
export type WorkMessage = { kind: WorkKind; tenantId: string; id: string };

/** What a consumer gets: plain services, no request. */
export type WorkDeps = { db: Db; storage: Storage; settings: Settings };

/**
 * One kind of background work.
 *
 * `chunk` does one bounded piece from the cursor stored on the row and stores the new cursor
 * before it returns; "more" asks for another message, "done" means the row reached its final
 * status. It must be idempotent: a duplicate or retried message for a chunk already stored finds
 * the newer cursor and goes on from there (or returns "done" for a finished row).
 * `giveUp` marks the row failed once the queue's retries are spent.
 */
export type WorkHandler = {
  chunk(deps: WorkDeps, msg: WorkMessage): Promise<"more" | "done">;
  giveUp(deps: WorkDeps, msg: WorkMessage, error: unknown): Promise<void>;
};

/** Tries per message before `giveUp`; wrangler.toml's `max_retries` is larger so the queue never drops one first. */
export const MAX_ATTEMPTS = 5;

/** Seconds before a failed chunk is retried: 1, 2, 4, 8 … (capped at a minute). */
export const retryDelay = (attempts: number) => Math.min(60, 2 ** Math.max(0, attempts - 1));

/** Sends one message; request handlers call this after the row they describe is written. */
export async function enqueue(queue: Queue<WorkMessage>, msg: WorkMessage): Promise<void> {
  await queue.send(msg, { contentType: "json" });
}
