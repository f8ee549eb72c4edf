import type { Tensor } from "onnxruntime-web";
import { metrics } from "../../lib/metrics";
import { isBackground, pause } from "../../lib/priority";
import { TEXT_INPUTS } from "../manifest";
import { MAX_BATCH_ROWS, planBatches } from "./batching";
import type { KernelModel } from "./kernel";
import { loadOrt } from "./ort";
import { exclusive, type LoadedEncoder, using } from "./sessions";

/**
 * Embeds token-id sequences: micro-batches under the encoder's token budget (longest first, each
 * padded to its longest row with the attention mask at 0), one ORT run at a time, then pooling
 * (when the graph returns per-token states) and L2 normalisation as the manifest says. Returns one
 * vector per sequence, in input order.
 */
export function embedSequences(
  enc: LoadedEncoder,
  seqs: number[][],
  opts: BatchOptions = {},
  output: GraphOutput = "embedding",
): Promise<Float32Array[]> {
  return using(enc, () => run(enc, seqs, opts, output));
}

/** Deployment overrides: `tokens` per micro-batch (else the encoder's budget), `maxRows` per run. */
export type BatchOptions = { tokens?: number; maxRows?: number };

/**
 * Which graph output a run reads: the embedding (`manifest.output`, pooled and L2-normalised as the
 * manifest says) or a fine-tuned version's head (`manifest.head.output`, `[rows, K]` logits as is).
 */
export type GraphOutput = "embedding" | "logits";

/** The ONNX output name for `output`; a version without a head has no logits (callers check first). */
export function outputName(manifest: LoadedEncoder["manifest"], output: GraphOutput): string {
  if (output === "embedding") return manifest.output;
  if (!manifest.head) throw new Error("this version has no classification head (manifest.head)");
  return manifest.head.output;
}

async function run(
  enc: LoadedEncoder,
  seqs: number[][],
  opts: BatchOptions,
  output: GraphOutput,
): Promise<Float32Array[]> {
  if (enc.kernel && output === "embedding") return runKernel(enc, enc.kernel, seqs, opts);
  if (!enc.session) throw new Error(`${enc.key}: served by a kernel, which has no ${output} output`);
  const session = enc.session;
  const { ort } = await loadOrt();
  const { manifest } = enc;
  const name = outputName(manifest, output);
  const out: Float32Array[] = new Array(seqs.length);
  const batches = planBatches(
    seqs.map((s) => s.length),
    opts.tokens ?? enc.tokenBudget,
    opts.maxRows ?? enc.maxRows ?? MAX_BATCH_ROWS,
  );
  for (const batch of batches) {
    const rows = batch.length;
    const width = Math.max(...batch.map((i) => (seqs[i] as number[]).length));
    const ids = new BigInt64Array(rows * width);
    const mask = new BigInt64Array(rows * width);
    batch.forEach((i, r) => {
      const s = seqs[i] as number[];
      for (let t = 0; t < s.length; t++) {
        ids[r * width + t] = BigInt(s[t] as number);
        mask[r * width + t] = 1n;
      }
    });
    // By name, never by position: a manifest may list the graph's inputs in any order.
    const byRole = { ids, mask, types: null as BigInt64Array | null };
    const feeds: Record<string, Tensor> = {};
    for (const name of manifest.inputs) {
      const role = TEXT_INPUTS[name as keyof typeof TEXT_INPUTS];
      if (!role) throw new Error(`text input \`${name}\` has no meaning here (the manifest check refuses it)`);
      byRole.types ??= role === "types" ? new BigInt64Array(rows * width) : null;
      feeds[name] = new ort.Tensor("int64", byRole[role] as BigInt64Array, [rows, width]);
    }
    const started = Date.now();
    const result = await exclusive(() => session.run(feeds, [name]), {
      units: rows * width,
      budget: opts.tokens ?? enc.tokenBudget,
    });
    metrics.runSeconds.observe((Date.now() - started) / 1000, { precision: enc.precision });
    metrics.batchRows.observe(rows, { precision: enc.precision });
    metrics.batchTokens.observe(rows * width, { precision: enc.precision });
    const tensor = result[name] as Tensor;
    const data = tensor.data as Float32Array;
    const dims = tensor.dims;
    if (output === "logits" && (dims.length !== 2 || dims[0] !== rows)) {
      throw new Error(`${name} has shape [${dims.join(", ")}]; a head returns [${rows}, labels]`);
    }
    batch.forEach((i, r) => {
      let v: Float32Array;
      if (dims.length === 2) {
        const d = dims[1] as number;
        v = data.slice(r * d, (r + 1) * d);
      } else {
        const d = dims[2] as number;
        const len = (seqs[i] as number[]).length;
        v = pool(data.subarray(r * width * d, (r + 1) * width * d), len, d, manifest.pooling);
      }
      out[i] = manifest.normalize && output === "embedding" ? l2normalize(v) : v;
    });
    for (const t of Object.values(result)) (t as Tensor).dispose?.();
  }
  return out;
}

/** Tokens per kernel slice in background work (~20 ms of MiniLM here); see runKernel. */
const BACKGROUND_SLICE_TOKENS = 64;

/**
 * The kernel embeds one sequence per call (no padding, so nothing depends on batch-mates); the
 * micro-batch plan only sizes the slices between which the encoder yields to other requests.
 * Background work (lib/priority.ts) runs slices of BACKGROUND_SLICE_TOKENS (~20 ms of MiniLM
 * here), and a longer sequence alone, a layer at a time with a pause between layers (a max_tokens
 * sequence holds the thread ~100 ms here, a layer ~17 ms).
 * Its vectors come out pooled and L2-normalised.
 */
async function runKernel(
  enc: LoadedEncoder,
  kernel: KernelModel,
  seqs: number[][],
  opts: BatchOptions,
): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(seqs.length);
  const background = isBackground();
  const budget = opts.tokens ?? enc.tokenBudget;
  const slices = planBatches(
    seqs.map((s) => s.length),
    background ? BACKGROUND_SLICE_TOKENS : budget,
    opts.maxRows ?? MAX_BATCH_ROWS,
  );
  for (const batch of slices) {
    const units = batch.reduce((n, i) => n + (seqs[i] as number[]).length, 0);
    const started = Date.now();
    await exclusive(
      async () => {
        for (const i of batch) {
          const seq = seqs[i] as number[];
          const layered = background && seq.length > BACKGROUND_SLICE_TOKENS;
          out[i] = layered ? await kernel.embedInLayers(seq, pause) : kernel.embed(seq);
        }
      },
      { units, budget },
    );
    metrics.runSeconds.observe((Date.now() - started) / 1000, { precision: enc.precision });
    metrics.batchRows.observe(batch.length, { precision: enc.precision });
    metrics.batchTokens.observe(units, { precision: enc.precision });
  }
  return out;
}

/** A float32 input tensor for `runFloatBatch`: row-major data and its shape. */
export type FloatFeed = { data: Float32Array; dims: number[] };

/**
 * One ORT run of float feeds (image `pixel_values`, series `values` + `observed`) whose output is
 * one row per input, `[rows, dims]` (or `[rows, K]` logits). Call it inside `using(enc, …)`.
 * Returns the rows in order, embeddings L2-normalised when the manifest says so; `units` is what
 * the batch counts for the metrics.
 */
export async function runFloatBatch(
  enc: LoadedEncoder,
  feeds: Record<string, FloatFeed>,
  rows: number,
  units: number,
  output: GraphOutput = "embedding",
): Promise<Float32Array[]> {
  const { ort } = await loadOrt();
  const { manifest } = enc;
  const name = outputName(manifest, output);
  const tensors: Record<string, Tensor> = {};
  for (const [input, f] of Object.entries(feeds)) tensors[input] = new ort.Tensor("float32", f.data, f.dims);
  const started = Date.now();
  const session = enc.session;
  if (!session) throw new Error(`${enc.key}: a kernel serves only text embeddings`);
  const result = await exclusive(() => session.run(tensors, [name]), { units, budget: enc.tokenBudget });
  metrics.runSeconds.observe((Date.now() - started) / 1000, { precision: enc.precision });
  metrics.batchRows.observe(rows, { precision: enc.precision });
  metrics.batchTokens.observe(units, { precision: enc.precision });
  const tensor = result[name] as Tensor;
  try {
    const { dims } = tensor;
    if (dims.length !== 2 || dims[0] !== rows) {
      const what = output === "logits" ? "a head" : `a ${manifest.modality} encoder`;
      throw new Error(
        `${name} has shape [${dims.join(", ")}]; ${what} returns [${rows}, ${output === "logits" ? "labels" : "dims"}]`,
      );
    }
    const d = dims[1] as number;
    const data = tensor.data as Float32Array;
    return Array.from({ length: rows }, (_, r) => {
      const v = data.slice(r * d, (r + 1) * d);
      return manifest.normalize && output === "embedding" ? l2normalize(v) : v;
    });
  } finally {
    for (const t of Object.values(result)) (t as Tensor).dispose?.();
  }
}

function pool(states: Float32Array, len: number, d: number, pooling: string): Float32Array {
  if (pooling === "cls") return states.slice(0, d);
  const v = new Float32Array(d);
  for (let t = 0; t < len; t++) for (let k = 0; k < d; k++) v[k] = (v[k] ?? 0) + (states[t * d + k] ?? 0);
  for (let k = 0; k < d; k++) v[k] = (v[k] ?? 0) / Math.max(len, 1);
  return v;
}

export function l2normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  if (n > 0) for (let k = 0; k < v.length; k++) v[k] = (v[k] ?? 0) / n;
  return v;
}

/** Matryoshka truncation: the first `dims` components, renormalised. */
export const truncateDims = (v: Float32Array, dims: number) => l2normalize(v.slice(0, dims));

/** Little-endian float32 bytes as base64, what the OpenAI SDKs decode for `encoding_format: "base64"`. */
export function toBase64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let k = 0; k < v.length; k++) view.setFloat32(k * 4, v[k] as number, true);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
