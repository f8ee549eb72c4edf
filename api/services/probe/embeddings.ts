// Probe inputs go through the same encoder runtime as /v1/embeddings (session cache, micro-batches
// under the memory budget), behind a cache keyed by (model version id, SHA-256 of the input: the
// text, the encoded image file, or the series as JSON — `modalItemKey`), so a repeated probe on the
// same set does not embed again. Cached vectors are the runtime's float32 output, stored as
// little-endian bytes.
import { sha256Hex } from "../../lib/crypto";
import { isBackground, turn } from "../../lib/priority";
import type { VersionRow } from "../registry";
import type { Storage } from "../storage";

/** Embeds inputs in order; the runtime's contract (one vector per input). */
export type Embed<T> = (inputs: T[]) => Promise<Float32Array[]>;

export const cacheKey = (versionId: string, sha256: string) => `cache/embeddings/${versionId}/${sha256}`;

// Bounded so a probe of a few thousand texts does not open thousands of R2 calls at once.
const CACHE_CONCURRENCY = 16;

// In background work (an evaluation's chunk: 128 cache reads, then 128 writes) each storage call
// takes a turn first and 4 run at once: under `wrangler dev` R2 and D1 share workerd's thread, and
// a burst of 16 held `GET /v1/models` for ~400 ms at every chunk boundary.
async function pool<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  const background = isBackground();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      // The index is taken before the turn: another worker may run meanwhile.
      const i = next++;
      if (background) await turn();
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(background ? 4 : limit, n) }, worker));
  return out;
}

export type EmbedStats = { cached: number; embedded: number; embed_ms: number };

/**
 * Embeddings of `inputs` for one model version: the set's bundle if this set was embedded before,
 * else per-input cache hits from R2 and the misses (each distinct input once) through `embed`, then
 * both written back. `keyOf` gives the bytes (or text) whose SHA-256 identifies an input. Returns
 * vectors in input order.
 */
export async function embedWithCache<T>(
  storage: Storage,
  versionId: string,
  inputs: T[],
  keyOf: (input: T) => string | Uint8Array,
  embed: Embed<T>,
): Promise<{ vectors: Float32Array[]; stats: EmbedStats }> {
  const started = Date.now();
  if (inputs.length === 0) return { vectors: [], stats: { cached: 0, embedded: 0, embed_ms: 0 } };
  const hashes = await Promise.all(inputs.map((x) => sha256Hex(keyOf(x))));
  const unique = [...new Set(hashes)].sort();
  // The whole set as one object too, keyed by its sorted input hashes: a repeated probe, or an
  // evaluation of the same set with another split, costs one read instead of one per input.
  const setKey = cacheKey(versionId, `sets/${await sha256Hex(unique.join(""))}`);
  const bundle = await storage.get(setKey);
  if (bundle) {
    const all = new Float32Array(await bundle.arrayBuffer());
    const d = all.length / unique.length;
    const at = new Map(unique.map((h, i) => [h, i]));
    return {
      vectors: hashes.map((h) => all.slice((at.get(h) as number) * d, ((at.get(h) as number) + 1) * d)),
      stats: { cached: unique.length, embedded: 0, embed_ms: Date.now() - started },
    };
  }
  const found = new Map<string, Float32Array>();
  await pool(unique.length, CACHE_CONCURRENCY, async (i) => {
    const h = unique[i] as string;
    const obj = await storage.get(cacheKey(versionId, h));
    if (obj) found.set(h, new Float32Array(await obj.arrayBuffer()));
  });
  const missing = unique.filter((h) => !found.has(h));
  if (missing.length > 0) {
    const inputOf = new Map<string, T>();
    hashes.forEach((h, i) => {
      if (!inputOf.has(h)) inputOf.set(h, inputs[i] as T);
    });
    const vectors = await embed(missing.map((h) => inputOf.get(h) as T));
    missing.forEach((h, i) => {
      found.set(h, vectors[i] as Float32Array);
    });
    await pool(missing.length, CACHE_CONCURRENCY, async (i) => {
      const h = missing[i] as string;
      const v = found.get(h) as Float32Array;
      await storage.put(cacheKey(versionId, h), new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    });
  }
  const d = (found.get(unique[0] as string) as Float32Array).length;
  const all = new Float32Array(unique.length * d);
  unique.forEach((h, i) => {
    all.set(found.get(h) as Float32Array, i * d);
  });
  await storage.put(setKey, new Uint8Array(all.buffer));
  return {
    vectors: hashes.map((h) => found.get(h) as Float32Array),
    stats: { cached: unique.length - missing.length, embedded: missing.length, embed_ms: Date.now() - started },
  };
}

/** What a probe needs to know of the version it runs on. */
export type ProbeVersion = Pick<VersionRow, "id" | "modality" | "dims" | "manifest" | "files">;
