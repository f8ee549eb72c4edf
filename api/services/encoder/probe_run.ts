// The import check that a graph really runs: load a variant into onnxruntime-web exactly as serving
// would and embed a probe input through the same code path /v1/embeddings uses. A graph that only
// parses (a corrupted protobuf with its sha256 updated), that returns other dims than the manifest
// claims, or that cannot take max_tokens positions is refused before it is registered.
import { imagePreprocessing, type Manifest, MODAL_INPUTS, seriesPreprocessing } from "../manifest";
import { embedSequences, runFloatBatch } from "./embed";
import { embedSeries } from "./series";
import { createEncoder, type LoadedEncoder, type Precision, releaseEncoder, using } from "./sessions";

const PROBE_TEXT = "The quick brown fox jumps over the lazy dog, and 42 whales sang. ";

export type VariantBytes = { model: Uint8Array; data: Uint8Array | null; tokenizerJson: Uint8Array | null };

/**
 * Runs `precision` of `manifest` once on a probe input: text a full max_tokens sequence batched
 * with a short one (so padding and the mask are exercised), an image of zeros, a max_length series.
 *
 * @returns null when every vector has `manifest.dims` finite components, else what went wrong and
 *   which manifest field it contradicts (`dims`, `max_tokens`) or `file` for the graph itself.
 */
export async function probeRun(
  manifest: Manifest,
  precision: Precision,
  files: VariantBytes,
): Promise<{ field: "dims" | "max_tokens" | "file"; message: string } | null> {
  const problem = await run(manifest, precision, files);
  if (problem === null) return null;
  const field = problem.includes("manifest dims") ? "dims" : problem.includes("max_tokens") ? "max_tokens" : "file";
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
    let vectors: Float32Array[];
    if (manifest.modality === "text") {
      const tok = enc.tokenizer;
      if (!tok) return "has no tokenizer";
      const maxTokens = manifest.max_tokens ?? 512;
      const long = tok.encode(PROBE_TEXT.repeat(Math.ceil(maxTokens / 4) + 1)).ids;
      if (long.length !== maxTokens) {
        return `a long probe text tokenizes to ${long.length} ids, not max_tokens ${maxTokens}`;
      }
      vectors = await embedSequences(enc, [long, tok.encode("hello").ids]);
    } else if (manifest.modality === "image") {
      const p = imagePreprocessing(manifest);
      const pixels = new Float32Array(p.channels * p.image_size * p.image_size);
      vectors = await using(enc, () =>
        runFloatBatch(
          enc,
          { [MODAL_INPUTS.image[0]]: { data: pixels, dims: [1, p.channels, p.image_size, p.image_size] } },
          1,
          1,
        ),
      );
    } else {
      const p = seriesPreprocessing(manifest);
      const values = Array.from({ length: p.channels }, (_, c) =>
        Array.from({ length: p.max_length }, (_, t) => Math.sin(t / 5 + c)),
      );
      vectors = (await embedSeries(enc, [{ kind: "series", values }])).vectors;
    }
    for (const v of vectors) {
      if (v.length !== manifest.dims)
        return `returns ${v.length}-dimensional vectors, but manifest dims is ${manifest.dims}`;
      if (!v.every(Number.isFinite)) return "returns non-finite values (NaN or infinity) on a probe input";
    }
    return null;
  } catch (e) {
    return `fails on a probe input: ${message(e)}`;
  } finally {
    await releaseEncoder(enc).catch(() => {});
  }
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 300);
