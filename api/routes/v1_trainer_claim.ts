import { createRoute, z } from "@hono/zod-openapi";
import { JOB_KINDS } from "../../db/schema";
import { errorResponses } from "../lib/errors";
import { bearer, jsonBody, jsonResponse, type Router } from "../lib/openapi";
import { requireScope } from "../middleware/auth";
import { claim } from "../services/job_claim";
import { leaseSeconds } from "../services/jobs";

const Signed = z.object({ method: z.enum(["GET", "PUT"]), url: z.string(), expiresAt: z.string() });

export const ClaimSchema = z
  .object({
    job: z.object({
      id: z.string(),
      kind: z.enum(JOB_KINDS).openapi({
        description:
          "`finetune`: `corpus` is the labeled set, `evalSet` the eval set (or null), `init` the base version and " +
          "`config` the fine-tune hyperparameters; train the encoder plus a head and export `logits` (manifest `head`).",
      }),
      model: z.string(),
      modality: z.string(),
      objective: z.string(),
      preset: z.string(),
      config: z.record(z.string(), z.unknown()),
      attempt: z.number().int(),
      evalDataset: z.string().nullable(),
    }),
    lease: z.object({ owner: z.string(), token: z.string(), expiresAt: z.string(), seconds: z.number().int() }),
    corpus: Signed.extend({ sha256: z.string(), bytes: z.number().int(), format: z.string() }),
    evalSet: Signed.extend({ sha256: z.string(), format: z.string() }).nullable(),
    checkpoint: Signed.extend({ step: z.number().int(), sha256: z.string(), bytes: z.number().int() }).nullable(),
    init: z
      .object({
        ref: z.string().openapi({ example: "minilm@1" }),
        manifest: z.record(z.string(), z.unknown()),
        files: z.record(z.string(), Signed.extend({ sha256: z.string(), bytes: z.number().int() })).openapi({
          description: "Presigned GETs for the version's `weights` file and its tokenizer.json (text).",
        }),
      })
      .nullable()
      .openapi({
        description:
          "Set when the job continues a registered version (`init_from`) or fine-tunes one (`base`): start from these weights, this tokenizer and the manifest's `architecture`; the job's preset does not apply.",
      }),
  })
  .openapi("Claim");

const route = createRoute({
  method: "post",
  path: "/v1/trainer/claim",
  tags: ["trainer"],
  summary: "Claim the oldest queued job (or one whose lease expired) with a lease",
  description:
    "One atomic UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING: concurrent claims never get the same job. " +
    "204 when nothing is waiting. The answer carries presigned URLs for the corpus and the last checkpoint, and " +
    "for a job with `init_from` (`init`) the version's manifest and presigned GETs for its weights and tokenizer.",
  security: bearer,
  middleware: [requireScope("trainer")] as const,
  request: {
    body: jsonBody(z.object({ owner: z.string().min(1).max(200).openapi({ example: "trainer-gpu0-7f3a" }) })),
  },
  responses: {
    200: jsonResponse(ClaimSchema, "A job and its lease."),
    204: { description: "Nothing to do; poll again later." },
    ...errorResponses,
  },
});

export const registerV1TrainerClaim = (app: Router) =>
  app.openapi(route, async (c) => {
    const { owner } = c.req.valid("json");
    const answer = await claim(c.get("services"), c.get("auth").tenantId, owner, leaseSeconds(c.env));
    return answer ? c.json(answer, 200) : c.body(null, 204);
  });
