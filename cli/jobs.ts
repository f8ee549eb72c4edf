// Jobs of both kinds behind one `jobs` command: pretraining and fine-tune jobs share the id space
// (`job_…`) but not the routes (each kind's routes 404 for the other's jobs), so an id is looked up
// under pretraining first and under fine-tuning when that 404s, and the kind found is remembered for
// the polls of `--watch`.
import { type components, SelfsupError, unwrap } from "../client";
import type { Ctx } from "./context";

export type Job = components["schemas"]["TrainingJob"];
type Kind = Job["kind"];

const kindOf = new Map<string, Kind>();

function fetchJob(ctx: Ctx, id: string, kind: Kind): Promise<Job> {
  const params = { params: { path: { id } } };
  return unwrap(
    kind === "finetune"
      ? ctx.client.GET("/v1/finetuning/jobs/{id}", params)
      : ctx.client.GET("/v1/pretraining/jobs/{id}", params),
  );
}

const is404 = (e: unknown) => e instanceof SelfsupError && e.status === 404;

/** The job `id`, whichever its kind; a 404 (the pretraining route's, naming the list) when neither has it. */
export async function getJob(ctx: Ctx, id: string): Promise<Job> {
  const known = kindOf.get(id);
  if (known) return fetchJob(ctx, id, known);
  try {
    const job = await fetchJob(ctx, id, "pretrain");
    kindOf.set(id, "pretrain");
    return job;
  } catch (e) {
    if (!is404(e)) throw e;
    try {
      const job = await fetchJob(ctx, id, "finetune");
      kindOf.set(id, "finetune");
      return job;
    } catch (e2) {
      throw is404(e2) ? e : e2;
    }
  }
}

/** Cancels the job `id` through its kind's route. */
export async function cancelJob(ctx: Ctx, id: string): Promise<Job> {
  const { kind } = await getJob(ctx, id);
  const params = { params: { path: { id } } };
  return unwrap(
    kind === "finetune"
      ? ctx.client.POST("/v1/finetuning/jobs/{id}/cancel", params)
      : ctx.client.POST("/v1/pretraining/jobs/{id}/cancel", params),
  );
}

/** Jobs of both kinds, newest first. */
export async function listJobs(ctx: Ctx): Promise<{ object: "list"; data: Job[] }> {
  const [pre, fine] = await Promise.all([
    unwrap(ctx.client.GET("/v1/pretraining/jobs")),
    unwrap(ctx.client.GET("/v1/finetuning/jobs")),
  ]);
  const data = [...pre.data, ...fine.data].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return { object: "list", data };
}

export function jobSummary(job: Job) {
  return {
    id: job.id,
    kind: job.kind,
    status: job.status,
    model: job.modelVersion ?? job.model,
    objective: job.objective,
    preset: job.preset,
    from: job.base ?? job.initFrom ?? "",
    progress: `${job.progress.step}/${job.progress.total}`,
    error: job.error ?? "",
  };
}
