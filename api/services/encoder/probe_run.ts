// The import check that a graph really runs: load a variant into onnxruntime-web exactly as serving
// would and embed a probe input through the same code path /v1/embeddings uses. A graph that only
// parses (a corrupted protobuf with its sha256 updated), that returns other dims than the manifest
// claims, or that cannot take max_tokens positions is refused before it is registered.
import { imagePreprocessing, type Manifest, MODAL_INPUTS, seriesPreprocessing } from "../manifest";
import { embedSequences, type GraphOutput, runFloatBatch } from "./embed";
import { embedSeries } from "./series";
import { createEncoder, createKernelEncoder, type LoadedEncoder, releaseEncoder, using } from "./sessions";
import { type Precision, usesKernel } from "./variants";

const PROBE_TEXT = "The quick brown fox jumps over the lazy dog, and 42 whales sang. ";

export type VariantBytes = {
  model: Uint8Array;
  data: Uint8Array | null;
  tokenizerJson: Uint8Array | null;
  /** The variant's kernel file, when it has one (checked against the graph on the same probe). */
  kernel?: Uint8Array | null;
};

/**
 * A kernel must be the same encoder as its graph: on the probe inputs its vectors may differ from
 * the int8 graph's only by quantization (the exporter's int8 gate against fp32 is 0.97 too).
 */
export const KERNEL_MIN_COSINE = 0.97;

/**
 * Runs `precision` of `manifest` once on a probe input: text a full max_tokens sequence batched
 * with a short one (so padding and the mask are exercised), an image of zeros, a max_length series.
 *
 * A fine-tuned version's head output is run the same way and must give one finite logit per label.
 *
 * @returns null when every vector has `manifest.dims` finite components (and every logit row K
 *   finite values), else what went wrong and which manifest field it contradicts (`dims`,
 *   `max_tokens`, `head`) or `file` for the graph itself.
 */
export async function probeRun(
  manifest: Manifest,
  precision: Precision,
  files: VariantBytes,
): Promise<{ field: "dims" | "max_tokens" | "head" | "file" | "kernel"; message: string } | null> {
  const problem = await run(manifest, precision, files);
  if (problem === null) return null;
  const field = problem.startsWith("kernel")
    ? "kernel"
    : problem.includes("manifest dims")
      ? "dims"
      : problem.includes("max_tokens")
        ? "max_tokens"
        : problem.includes("head output")
          ? "head"
          : "file";
  return { field, message: problem };
}

async function run(manifest: Manifest, precision: Precision, files: VariantBytes): Promise<string | null> {
  let enc: LoadedEncoder;
  try {
    enc = await createEncoder({ id: "import-check", manifest }, precision, `import-check:${precision}`, files);
  } catch (e) {
    return `does not load in onnxruntime-web: ${message(e)}`;
  }
  try {
    const vectors = await probeOutputs(enc, "embedding");
    if (typeof vectors === "string") return vectors;
    for (const v of vectors) {
      if (v.length !== manifest.dims)
        return `returns ${v.length}-dimensional vectors, but manifest dims is ${manifest.dims}`;
      if (!v.every(Number.isFinite)) return "returns non-finite values (NaN or infinity) on a probe input";
    }
    if (files.kernel && usesKernel(manifest, precision)) {
      const disagreement = await kernelAgrees(manifest, precision, files.kernel, files.tokenizerJson, vectors);
      if (disagreement) return disagreement;
    }
    if (!manifest.head) return null;
    // A fine-tuned version: its head output, through the path /v1/classifications reads it.
    const logits = await probeOutputs(enc, "logits");
    if (typeof logits === "string") return logits;
    const k = manifest.head.labels.length;
    for (const v of logits) {
      if (v.length !== k)
        return `head output \`${manifest.head.output}\` returns ${v.length} logits for ${k} head labels`;
      if (!v.every(Number.isFinite)) return `head output \`${manifest.head.output}\` returns non-finite logits`;
    }
    return null;
  } catch (e) {
    return `fails on a probe input: ${message(e)}`;
  } finally {
    await releaseEncoder(enc).catch(() => {});
  }
}

/** Null when the kernel embeds the probe inputs as the graph did (`reference`), else why not. */
async function kernelAgrees(
  manifest: Manifest,
  precision: Precision,
  kernel: Uint8Array,
  tokenizerJson: Uint8Array | null,
  reference: Float32Array[],
): Promise<string | null> {
  let enc: LoadedEncoder;
  try {
    enc = await createKernelEncoder(
      { id: "import-check", manifest },
      precision,
      "import-check:kernel",
      kernel,
      tokenizerJson,
    );
  } catch (e) {
    return `kernel file does not load: ${message(e)}`;
  }
  try {
    const vectors = await probeOutputs(enc, "embedding");
    if (typeof vectors === "string") return `kernel: ${vectors}`;
    for (const [i, v] of vectors.entries()) {
      const ref = reference[i] as Float32Array;
      let dot = 0;
      for (let k = 0; k < v.length; k++) dot += (v[k] as number) * (ref[k] as number);
      if (!(dot >= KERNEL_MIN_COSINE)) {
        return `kernel file disagrees with the ${precision} graph on a probe input (cosine ${dot.toFixed(4)} < ${KERNEL_MIN_COSINE}): it is not the same encoder`;
      }
    }
    return null;
  } catch (e) {
    return `kernel fails on a probe input: ${message(e)}`;
  } finally {
    await releaseEncoder(enc).catch(() => {});
  }
}

/** The probe inputs' rows of `output` (see probeRun), or why the text probe cannot be built. */
async function probeOutputs(enc: LoadedEncoder, output: GraphOutput): Promise<Float32Array[] | string> {
  const { manifest } = enc;
  if (manifest.modality === "text") {
    const tok = enc.tokenizer;
    if (!tok) return "has no tokenizer";
    const maxTokens = manifest.max_tokens ?? 512;
    const long = tok.encode(PROBE_TEXT.repeat(Math.ceil(maxTokens / 4) + 1)).ids;
    if (long.length !== maxTokens) {
      return `a long probe text tokenizes to ${long.length} ids, not max_tokens ${maxTokens}`;
    }
    return embedSequences(enc, [long, tok.encode("hello").ids], {}, output);
  }
  if (manifest.modality === "image") {
    const p = imagePreprocessing(manifest);
    const pixels = new Float32Array(p.channels * p.image_size * p.image_size);
    return using(enc, () =>
      runFloatBatch(
        enc,
        { [MODAL_INPUTS.image[0]]: { data: pixels, dims: [1, p.channels, p.image_size, p.image_size] } },
        1,
        1,
        output,
      ),
    );
  }
  const p = seriesPreprocessing(manifest);
  const values = Array.from({ length: p.channels }, (_, c) =>
    Array.from({ length: p.max_length }, (_, t) => Math.sin(t / 5 + c)),
  );
  return (await embedSeries(enc, [{ kind: "series", values }], { output })).vectors;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 300);
