import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { completeJob } from "../services/job_complete";
import { JobSchema, jobView } from "./views/job_views";

const route = createRoute({
  method: "post",
  path: "/v1/trainer/jobs/{id}/complete",
  tags: ["trainer"],
  summary: "Finish a job: verify every artifact, register the version, move `latest` — in one batch",
  description:
    "The manifest's `modality` and `objective` must be the job's (422 naming the field, nothing registered). " +
    "Every file's size and SHA-256 are checked, the graph is loaded and run once on a probe input (as for imports), " +
    'then the version is registered. With the job\'s `promote: "always"` `latest` moves to it. With ' +
    '`"if_better"` the API first scores the new version and the current `latest` with the same linear probe on ' +
    "the job's eval set (the POST /v1/evaluations code path: one seeded split, the serving runtime) — synchronously, " +
    "inside this call (it can take a while; the trainer waits up to 300 s) — and moves `latest` only if the new one " +
    "is strictly better (or there is no `latest` yet). Both numbers land in the job's `promotion` and a `promotion` " +
    "event; the version is registered either way. A stale `error` from an earlier failed attempt is cleared.",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(z.object({ lease_token: z.string(), manifest: z.record(z.string(), z.unknown()) })),
  },
  responses: { 200: jsonResponse(JobSchema, "The succeeded job with its `modelVersion`."), ...errorResponses },
});

export const registerV1TrainerComplete = (app: Router) =>
  app.openapi(route, async (c) => {
    const services = c.get("services");
    const id = c.req.valid("param").id;
    const job = await completeJob(services, c.get("auth").tenantId, id, c.req.valid("json"));
    return c.json(await jobView(services.db, job, true), 200);
  });
