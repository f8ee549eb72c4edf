// `train --watch` / `finetune --watch` / `jobs watch`: a progress bar that rides out API restarts.
import { SelfsupError } from "../client";
import { throughput } from "./args";
import type { Ctx } from "./context";
import { duration, ProgressBar } from "./format";
import { getJob, type Job } from "./jobs";

/** How long --watch keeps retrying an API it cannot reach (e.g. `make dev` restarting). */
const WATCH_OUTAGE_MS = 10 * 60 * 1000;

/** A failure that is worth waiting out: no connection, or the API answering 5xx while it restarts. */
function transient(e: unknown): boolean {
  if (e instanceof SelfsupError) return e.status >= 500;
  return e instanceof TypeError; // fetch's "fetch failed" (ECONNREFUSED, ECONNRESET, …)
}

export const causeOf = (e: unknown) => {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
};

export async function watchJob(ctx: Ctx, id: string): Promise<Job> {
  let bar: ProgressBar | null = null;
  let downSince: number | null = null;
  for (;;) {
    let job: Job;
    try {
      job = await getJob(ctx, id);
    } catch (e) {
      if (!transient(e)) throw e;
      const now = Date.now();
      if (downSince === null) {
        downSince = now;
        process.stderr.write(
          `\nAPI at ${ctx.baseUrl} unreachable (${e instanceof SelfsupError ? `HTTP ${e.status}` : causeOf(e)}); ` +
            "retrying every 2 s (the job keeps running on the trainer)\n",
        );
      } else if (now - downSince > WATCH_OUTAGE_MS) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (downSince !== null) {
      process.stderr.write(`API at ${ctx.baseUrl} is back after ${duration((Date.now() - downSince) / 1000)}\n`);
      downSince = null;
    }
    const m = job.metrics ?? {};
    const loss = typeof m.loss === "number" ? ` loss ${m.loss.toFixed(3)}` : "";
    const rate = typeof m.tokens_per_second === "number" ? ` ${throughput(job.modality, m.tokens_per_second)}` : "";
    const acc = typeof m.eval_accuracy === "number" ? ` eval acc ${(m.eval_accuracy * 100).toFixed(1)}%` : "";
    bar ??= new ProgressBar(job.kind === "finetune" ? "fine-tuning " : "training ");
    bar.update(
      job.progress.fraction,
      `step ${job.progress.step}/${job.progress.total}${loss}${acc}${rate} ETA ${duration(job.progress.etaSeconds)} [${job.status}]`,
    );
    if (!["queued", "running"].includes(job.status)) {
      process.stderr.write("\n");
      return job;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
