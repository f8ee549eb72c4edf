// What the pretraining and the fine-tune job routes share: the same job rows (`training_jobs.kind`
// tells them apart), the same view, and list / get / cancel operations that differ only in path,
// tag and wording. Each route file builds its operation here, so neither imports the other.
import { createRoute, z } from "@hono/zod-openapi";
import { JOB_STATUSES, type JobKind, PROMOTE_POLICIES } from "../../../db/schema";
import { errorResponses } from "../../lib/errors";
import { bearer, jsonResponse, type Router } from "../../lib/openapi";
import { requireScope } from "../../middleware/auth";
import { cancelJob } from "../../services/job_leases";
import { findJob, JOBS_PATH, listJobs } from "../../services/jobs";
import { JobSchema, jobView } from "./job_views";

const TAGS: Record<JobKind, string> = { pretrain: "pretraining", finetune: "finetuning" };

/** `GET /v1/{pretraining,finetuning}/jobs`: the tenant's jobs of `kind`, newest first. */
export function jobListOperation(kind: JobKind, summary: string) {
  const route = createRoute({
    method: "get",
    path: JOBS_PATH[kind],
    tags: [TAGS[kind]],
    summary,
    security: bearer,
    middleware: [requireScope("train")] as const,
    request: { query: z.object({ status: z.enum(JOB_STATUSES).optional() }) },
    responses: {
      200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(JobSchema) }), "Jobs."),
      ...errorResponses,
    },
  });
  return (app: Router) =>
    app.openapi(route, async (c) => {
      const { db } = c.get("services");
      const rows = await listJobs(db, c.get("auth").tenantId, c.req.valid("query").status, kind);
      const data = await Promise.all(rows.map((j) => jobView(db, j, false)));
      return c.json({ object: "list" as const, data }, 200);
    });
}

/** `GET …/jobs/{id}`: one job of `kind` with its curves and events; a job of the other kind is a 404 naming its route. */
export function jobGetOperation(kind: JobKind, summary: string) {
  const route = createRoute({
    method: "get",
    path: `${JOBS_PATH[kind]}/{id}`,
    tags: [TAGS[kind]],
    summary,
    security: bearer,
    middleware: [requireScope("train")] as const,
    request: { params: z.object({ id: z.string() }) },
    responses: { 200: jsonResponse(JobSchema, "The job."), ...errorResponses },
  });
  return (app: Router) =>
    app.openapi(route, async (c) => {
      const { db } = c.get("services");
      const job = await findJob(db, c.get("auth").tenantId, c.req.valid("param").id, kind);
      return c.json(await jobView(db, job, true), 200);
    });
}

/** `POST …/jobs/{id}/cancel`: a queued job at once, a running one at its trainer's next heartbeat. */
export function jobCancelOperation(kind: JobKind, summary: string) {
  const route = createRoute({
    method: "post",
    path: `${JOBS_PATH[kind]}/{id}/cancel`,
    tags: [TAGS[kind]],
    summary,
    security: bearer,
    middleware: [requireScope("train")] as const,
    request: { params: z.object({ id: z.string() }) },
    responses: {
      200: jsonResponse(JobSchema, "The job, `cancelled` or still `running` until its trainer stops."),
      ...errorResponses,
    },
  });
  return (app: Router) =>
    app.openapi(route, async (c) => {
      const { db } = c.get("services");
      const job = await cancelJob(db, c.get("auth").tenantId, c.req.valid("param").id, kind);
      return c.json(await jobView(db, job, true), 200);
    });
}

/** The create bodies' `promote`, naming the field that holds the eval set (`eval.dataset` or `eval_dataset`). */
export const promoteField = (evalField: string) =>
  z
    .enum(PROMOTE_POLICIES)
    .default("always")
    .openapi({
      description:
        "`always`: the new version becomes `latest`. `if_better`: only if its linear-probe accuracy on " +
        `\`${evalField}\` beats the current \`latest\`'s (both numbers in the job's \`promotion\`); needs \`${evalField}\`.`,
    });
