import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { heartbeat } from "../services/job_leases";
import { leaseSeconds } from "../services/jobs";

const Numbers = z.record(z.string(), z.number().refine(Number.isFinite, "must be finite"));

const route = createRoute({
  method: "post",
  path: "/v1/trainer/jobs/{id}/heartbeat",
  tags: ["trainer"],
  summary: "Report progress and extend the lease; the answer says whether to stop",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(
      z
        .object({
          lease_token: z.string(),
          step: z.number().int().min(0),
          total_steps: z.number().int().min(1),
          eta_seconds: z.number().min(0).optional(),
          metrics: Numbers.optional().openapi({ example: { loss: 5.2, lr: 0.0004, tokens_per_second: 5100 } }),
          eval: Numbers.optional().openapi({ example: { knn_accuracy: 0.62, linear_accuracy: 0.66 } }),
          checkpoint_step: z
            .number()
            .int()
            .min(0)
            .optional()
            .openapi({ description: "Set after uploading a checkpoint; the API checks it exists." }),
          checkpoint_sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/, "the checkpoint's SHA-256 as 64 lowercase hex characters")
            .optional(),
          checkpoint_bytes: z.number().int().min(1).optional(),
        })
        .refine((b) => b.checkpoint_step === undefined || (b.checkpoint_sha256 && b.checkpoint_bytes), {
          path: ["checkpoint_sha256"],
          message: "required with checkpoint_step (with checkpoint_bytes): the next trainer verifies its download",
        }),
    ),
  },
  responses: {
    200: jsonResponse(
      z.object({ cancel: z.boolean(), leaseExpiresAt: z.string().nullable() }),
      "`cancel: true` means stop now; the job is already marked cancelled.",
    ),
    ...errorResponses,
  },
});

export const registerV1TrainerHeartbeat = (app: Router) =>
  app.openapi(route, async (c) => {
    const ctx = { ...c.get("services"), background: (work: Promise<unknown>) => c.executionCtx.waitUntil(work) };
    const id = c.req.valid("param").id;
    return c.json(await heartbeat(ctx, c.get("auth").tenantId, id, c.req.valid("json"), leaseSeconds(c.env)), 200);
  });
