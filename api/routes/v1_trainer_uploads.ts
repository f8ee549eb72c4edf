import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { signUploads } from "../services/job_claim";

const FileName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "use a plain file name");

const route = createRoute({
  method: "post",
  path: "/v1/trainer/jobs/{id}/uploads",
  tags: ["trainer"],
  summary: "Presigned PUT URLs for the job's checkpoint and artifact files (short-lived, one key each)",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    params: z.object({ id: z.string() }),
    body: jsonBody(
      z.object({
        lease_token: z.string(),
        checkpoint_step: z
          .number()
          .int()
          .min(0)
          .optional()
          .openapi({ description: "Also sign a PUT for the checkpoint of this step." }),
        files: z
          .array(FileName)
          .max(64)
          .default([])
          .openapi({ example: ["model.onnx", "model.onnx.data", "tokenizer.json"] }),
      }),
    ),
  },
  responses: {
    200: jsonResponse(
      z.object({
        checkpoint: z.object({ method: z.literal("PUT"), url: z.string(), expiresAt: z.string() }).nullable(),
        files: z.record(z.string(), z.object({ method: z.literal("PUT"), url: z.string(), expiresAt: z.string() })),
      }),
      "One presigned PUT per requested object.",
    ),
    ...errorResponses,
  },
});

export const registerV1TrainerUploads = (app: Router) =>
  app.openapi(route, async (c) => {
    const id = c.req.valid("param").id;
    return c.json(await signUploads(c.get("services"), c.get("auth").tenantId, id, c.req.valid("json")), 200);
  });
