// The queue consumer: runs each message's chunk, re-enqueues unfinished work, retries failures with
// backoff and gives up (marking the row failed) after MAX_ATTEMPTS. Knows nothing of Hono.
import { inBackground } from "../../lib/priority";
import { datasetCheckWork } from "./dataset_check_work";
import { evaluationWork } from "./evaluation_work";
import { probeFitWork } from "./probe_fit_work";
import {
  enqueue,
  MAX_ATTEMPTS,
  retryDelay,
  type WorkDeps,
  type WorkHandler,
  type WorkKind,
  type WorkMessage,
} from "./work";

const HANDLERS: Record<WorkKind, WorkHandler> = {
  dataset_check: datasetCheckWork,
  probe_fit: probeFitWork,
  evaluation: evaluationWork,
};

/** What the consumer needs of a queue message (Cloudflare's `Message`, or a test's stand-in). */
export type WorkDelivery = {
  body: WorkMessage;
  attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
};

/**
 * Handles one delivered batch.
 *
 * @param deps services built from the Worker's bindings.
 * @param queue where unfinished work is sent again (the same queue).
 */
export async function consumeWork(
  deps: WorkDeps,
  queue: Queue<WorkMessage>,
  messages: readonly WorkDelivery[],
): Promise<void> {
  for (const m of messages) {
    const handler = HANDLERS[m.body?.kind as WorkKind];
    if (!handler) {
      // Retrying a message nobody understands would only delay the ones behind it.
      console.error(JSON.stringify({ level: "error", msg: "unknown work message", body: m.body }));
      m.ack();
      continue;
    }
    try {
      // The next chunk is sent before this one is acknowledged: a crash between the two runs the
      // chunk twice (each is idempotent), never loses the task.
      // As background work: its turns give way to requests in flight (lib/priority.ts).
      if ((await inBackground(() => handler.chunk(deps, m.body))) === "more") await enqueue(queue, m.body);
      m.ack();
    } catch (e) {
      console.error(
        JSON.stringify({
          level: "error",
          msg: "work chunk failed",
          kind: m.body.kind,
          id: m.body.id,
          attempts: m.attempts,
          error: e instanceof Error ? e.message : String(e),
        }),
      );
      if (m.attempts >= MAX_ATTEMPTS) {
        await handler.giveUp(deps, m.body, e);
        m.ack();
      } else {
        m.retry({ delaySeconds: retryDelay(m.attempts) });
      }
    }
  }
}
