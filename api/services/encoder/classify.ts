// /v1/classifications (issue 18): a fine-tuned version's head read through the embeddings path
// (encode.ts with `output: "logits"`), turned into probabilities by softmax and ranked.
import { unprocessable } from "../../lib/errors";
import type { Head, Manifest } from "../manifest";

/** Labels per answer when the request names no `top_k`. */
export const DEFAULT_TOP_K = 5;

/** The version's head, or a 422 naming `model` and the fix. */
export function requireHead(manifest: Manifest, ref: string): Head {
  if (manifest.head) return manifest.head;
  throw unprocessable(
    `model: ${ref} has no classification head (manifest \`head\`); fine-tune it with POST /v1/finetuning/jobs and classify with the new version, or use /v1/embeddings.`,
    [{ path: "model", message: "has no classification head; fine-tune it first" }],
  );
}

/** Probabilities from logits, computed in float64 after subtracting the largest logit (no overflow). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const out = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp((logits[i] as number) - max);
    sum += out[i] as number;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

export type Scored = { label: string; score: number };
export type Classification = { object: "classification"; index: number; label: string; score: number; top: Scored[] };

/**
 * One input's answer: the most probable label, its probability and the `topK` most probable labels
 * (capped at the number of labels), highest first; ties keep the head's label order.
 *
 * @throws Error when the logits do not have one value per label (the import check refuses such graphs).
 */
export function rank(logits: Float32Array, head: Head, index: number, topK: number): Classification {
  if (logits.length !== head.labels.length) {
    throw new Error(`the head returned ${logits.length} logits for ${head.labels.length} labels`);
  }
  const p = softmax(logits);
  const order = head.labels.map((_, i) => i).sort((a, b) => (p[b] as number) - (p[a] as number) || a - b);
  const top = order
    .slice(0, Math.min(topK, head.labels.length))
    .map((i) => ({ label: head.labels[i] as string, score: p[i] as number }));
  const best = top[0] as Scored;
  return { object: "classification", index, label: best.label, score: best.score, top };
}
