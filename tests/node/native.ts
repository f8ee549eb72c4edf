// onnxruntime-node (native CPU, one thread): the reference the Worker's onnxruntime-web is held to.
import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { TextTokenizer } from "../../api/services/encoder/tokenizer";
import type { Manifest } from "../../api/services/manifest";

export const FIXTURE_DIR =
  process.env.SELFSUP_FIXTURE_ENCODER ?? path.join(import.meta.dirname, "../fixtures/tiny-encoder");

export const readFixture = (name: string, dir = FIXTURE_DIR) => readFileSync(path.join(dir, name));
export const fixtureJson = <T>(name: string, dir = FIXTURE_DIR): T =>
  JSON.parse(readFixture(name, dir).toString("utf8")) as T;

export type Native = {
  manifest: Manifest;
  tokenizer: TextTokenizer;
  session: ort.InferenceSession;
  embed(seqs: number[][]): Promise<Float32Array[]>;
};

export async function nativeEncoder(precision: "fp32" | "int8", dir = FIXTURE_DIR): Promise<Native> {
  const manifest = fixtureJson<Manifest>("manifest.json", dir);
  const variant = manifest.variants[precision];
  if (!variant) throw new Error(`no ${precision} variant in ${dir}`);
  const tokenizer = new TextTokenizer(fixtureJson("tokenizer.json", dir), manifest.max_tokens ?? 512);
  // From the path, so ORT resolves `<model>.data` next to it (native external-data loading).
  const session = await ort.InferenceSession.create(path.join(dir, variant.model), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  return {
    manifest,
    tokenizer,
    session,
    async embed(seqs) {
      const width = Math.max(...seqs.map((s) => s.length));
      const ids = new BigInt64Array(seqs.length * width);
      const mask = new BigInt64Array(seqs.length * width);
      seqs.forEach((s, r) => {
        s.forEach((t, k) => {
          ids[r * width + k] = BigInt(t);
          mask[r * width + k] = 1n;
        });
      });
      // Fed by name, as the Worker does: an imported BERT also takes all-zero token_type_ids.
      const byName: Record<string, BigInt64Array> = {
        input_ids: ids,
        attention_mask: mask,
        token_type_ids: new BigInt64Array(seqs.length * width),
      };
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of manifest.inputs) {
        const data = byName[name];
        if (!data) throw new Error(`${dir}: input ${name} is not one the edge feeds`);
        feeds[name] = new ort.Tensor("int64", data, [seqs.length, width]);
      }
      const out = await session.run(feeds);
      const t = out[manifest.output] as ort.Tensor;
      const d = t.dims[1] as number;
      const data = t.data as Float32Array;
      return seqs.map((_, r) => data.slice(r * d, (r + 1) * d));
    },
  };
}

export { cosine } from "../math";

export type ReferenceCase = { text: string; ids: number[]; fp32: number[]; int8: number[] };
export const referenceCases = (dir = FIXTURE_DIR) =>
  fixtureJson<{ cases: ReferenceCase[] }>("reference_embeddings.json", dir).cases;
