import { createRoute, z } from "@hono/zod-openapi";
import { JOB_STATUSES } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { listJobs } from "../services/jobs";
import { JobSchema, jobView } from "./views/job_views";

const route = createRoute({
  method: "get",
  path: "/v1/pretraining/jobs",
  tags: ["pretraining"],
  summary: "List pretraining jobs, newest first (curves and events only on GET one)",
  security: bearer,
  middleware: [requireScope("train")] as const,
  request: { query: z.object({ status: z.enum(JOB_STATUSES).optional() }) },
  responses: {
    200: jsonResponse(z.object({ object: z.literal("list"), data: z.array(JobSchema) }), "Jobs."),
    ...errorResponses,
  },
});

export const registerV1PretrainingJobsList = (app: Router) =>
  app.openapi(route, async (c) => {
    const { db } = c.get("services");
    const { status } = c.req.valid("query");
    const rows = await listJobs(db, c.get("auth").tenantId, status, "pretrain");
    const data = await Promise.all(rows.map((j) => jobView(db, j, false)));
    return c.json({ object: "list" as const, data }, 200);
  });
