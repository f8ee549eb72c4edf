// Promote only what helped (issue 13): at a job's /complete with `promote: "if_better"`, the new
// version and the current `latest` are scored by the same linear probe on the job's eval set —
// the code path of POST /v1/evaluations (same examples, same seeded split, same options, same
// embedding runtime and precision choice), so the two numbers compare.
import type { Promotion } from "../../db/schema";
import { ApiError } from "../lib/errors";
import { choosePrecision, type Precision } from "./encoder/variants";
import type { Manifest } from "./manifest";
import { embedWithCache, type ProbeVersion } from "./probe/embeddings";
import { checkExamples, DEFAULT_SPLIT, fitProbe, planSplit, toMatrix } from "./probe/fit";
import { loadExamples, type ProbeContext, probeInputKey, runtimeEmbed } from "./probes";

/** The seed of the split both versions are scored on (POST /v1/evaluations' default). */
const SPLIT = { split: DEFAULT_SPLIT, seed: 0 };

/**
 * Linear-probe test accuracy of `version` on the labeled probe set `datasetId`: a stratified
 * 80/20 split (seed 0), embeddings through the serving runtime (cached in R2 per version), a
 * logistic regression with its C chosen by cross-validation on the train part.
 */
export async function linearProbeAccuracy(
  ctx: ProbeContext,
  version: ProbeVersion,
  ref: string,
  datasetId: string,
  preferred: Precision | "auto",
): Promise<number> {
  const { examples } = await loadExamples(ctx, version, ref, { dataset: datasetId }, "eval.dataset");
  const split = planSplit(examples, SPLIT);
  checkExamples("linear", split.train, split.test, {});
  const precision = choosePrecision(version.manifest as Manifest, preferred);
  const inputs = [...split.train, ...split.test];
  const { vectors } = await embedWithCache(
    ctx.storage,
    `${version.id}/${precision}`,
    inputs,
    probeInputKey,
    runtimeEmbed(ctx.storage, version, precision),
  );
  const n = split.train.length;
  const fit = fitProbe(
    "linear",
    { X: toMatrix(vectors.slice(0, n)), labels: split.train.map((e) => e.label) },
    { X: toMatrix(vectors.slice(n)), labels: split.test.map((e) => e.label) },
    {},
  );
  return fit.metrics.accuracy;
}

const reason = (e: unknown) => (e instanceof ApiError || e instanceof Error ? e.message : String(e)).slice(0, 500);

/**
 * Decides whether the candidate becomes `latest`: yes when there is no incumbent, or when the
 * candidate's accuracy is strictly higher. A candidate that cannot be scored is not promoted over
 * an incumbent; an incumbent that cannot be scored (e.g. its files are gone) does not block a
 * candidate that can. Errors are recorded, never thrown: the version is registered either way.
 */
export async function decidePromotion(
  ctx: ProbeContext,
  datasetId: string,
  preferred: Precision | "auto",
  candidate: { ref: string; version: ProbeVersion },
  incumbent: { ref: string; version: ProbeVersion } | null,
): Promise<Promotion> {
  const score = async (c: { ref: string; version: ProbeVersion }) => {
    try {
      return { ref: c.ref, linear: await linearProbeAccuracy(ctx, c.version, c.ref, datasetId, preferred) };
    } catch (e) {
      return { ref: c.ref, linear: null, error: reason(e) };
    }
  };
  const cand = await score(candidate);
  const inc = incumbent ? await score(incumbent) : null;
  const promoted = inc === null || (cand.linear !== null && (inc.linear === null || cand.linear > inc.linear));
  return { policy: "if_better", candidate: cand, incumbent: inc, promoted, evalDataset: datasetId };
}
