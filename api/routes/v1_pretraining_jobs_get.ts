import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { findJob } from "../services/jobs";
import { JobSchema, jobView } from "./views/job_views";

const route = createRoute({
  method: "get",
  path: "/v1/pretraining/jobs/{id}",
  tags: ["pretraining"],
  summary: "A job's status, progress, ETA, latest metrics, loss and eval curves, and events",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse(JobSchema, "The job."), ...errorResponses },
});

export const registerV1PretrainingJobsGet = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const job = await findJob(db, c.get("auth").tenantId, c.req.valid("param").id, "pretrain");
    return c.json(await jobView(db, job, true), 200);
  });
