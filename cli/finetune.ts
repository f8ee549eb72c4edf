// `selfsup finetune`: queue a fine-tune job (a registered encoder plus a classification head on a
// labeled dataset), each hyperparameter a flag named like its contract field (`--head-lr` → head_lr).

import { FinetuneHyperparameters } from "../api/contract";
import { type components, unwrap } from "../client";
import { FINETUNE_HYPERPARAMETERS, flagOf, UsageError } from "./args";
import { type Ctx, need } from "./context";
import type { Job } from "./jobs";

/**
 * The request body from the command line's flags.
 *
 * @param sets the `--set key=value` pairs, already parsed; a flag of the same field wins over them.
 */
export function finetuneBody(ctx: Ctx, sets: Record<string, number | string>) {
  const hp: Record<string, number | string> = { ...sets };
  for (const field of FINETUNE_HYPERPARAMETERS) {
    const v = ctx.flags[flagOf(field)];
    if (typeof v !== "string") continue;
    const choices = enumOptions(field);
    if (choices) {
      if (!choices.includes(v)) throw new UsageError(`--${flagOf(field)} ${v}: use one of ${choices.join(", ")}`);
      hp[field] = v;
      continue;
    }
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--${flagOf(field)} ${v}: not a number`);
    hp[field] = n;
  }
  const f = ctx.flags;
  return {
    model: need(ctx, "model"),
    base: need(ctx, "base"),
    dataset: need(ctx, "dataset"),
    ...(typeof f["eval-dataset"] === "string" ? { eval_dataset: f["eval-dataset"] } : {}),
    // Unknown `--set` keys reach the API, whose strict schema answers a 400 naming them.
    hyperparameters: hp as components["schemas"]["FinetuneHyperparameters"],
    ...(typeof f.promote === "string" ? { promote: f.promote as "always" | "if_better" } : {}),
    max_attempts: 3,
  };
}

export async function createFinetuneJob(ctx: Ctx, sets: Record<string, number | string>): Promise<Job> {
  return unwrap(ctx.client.POST("/v1/finetuning/jobs", { body: finetuneBody(ctx, sets) }));
}

/** A string-valued field's choices (e.g. head_init), or null for the numeric ones. */
function enumOptions(field: keyof FinetuneHyperparameters): string[] | null {
  const inner = FinetuneHyperparameters.shape[field].unwrap();
  return "options" in inner ? (inner.options as string[]) : null;
}
