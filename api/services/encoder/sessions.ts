import type { InferenceSession } from "onnxruntime-web";
import type { VersionFile } from "../../../db/schema";
import { sha256Hex } from "../../lib/crypto";
import { metrics } from "../../lib/metrics";
import { isBackground, turn } from "../../lib/priority";
import type { Manifest } from "../manifest";
import { currentTimings } from "./admission";
import { MAX_BATCH_ROWS } from "./batching";
import { KernelModel, kernelMemoryBytes } from "./kernel";
import { loadOrt, ortInitMs, ortMemoryBytes } from "./ort";
import { TextTokenizer } from "./tokenizer";
import { budgetFor, type Precision, servedBytes, usesKernel, variantBytes } from "./variants";

export type { Precision } from "./variants";

/**
 * Model bytes (ONNX + external data + tokenizer) cached sessions may hold per isolate. A model
 * bigger than this still loads, alone. With the per-run activation budget it keeps ORT's WASM
 * heap, and so the isolate, inside Cloudflare's 128 MB.
 */
export const SESSION_CACHE_BYTES = 48 * 1024 * 1024;
let cacheBudget = SESSION_CACHE_BYTES;
/** For tests: shrink the budget to exercise eviction. Returns the previous budget. */
export function setSessionCacheBudget(bytes: number): number {
  const previous = cacheBudget;
  cacheBudget = bytes;
  return previous;
}

export type EncoderVersion = {
  id: string;
  manifest: Manifest;
  files: Record<string, VersionFile>;
};

/** Reads a stored artifact; `Storage` from the request's services fits. */
export type ArtifactReader = { get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null> };

export type LoadedEncoder = {
  key: string;
  versionId: string;
  precision: Precision;
  manifest: Manifest;
  /** The ORT session, or null when our own int8 kernel serves this variant (`kernel`). */
  session: InferenceSession | null;
  /** Our WASM SIMD encoder (kernel.ts), when the version ships a kernel file for this variant. */
  kernel: KernelModel | null;
  tokenizer: TextTokenizer | null;
  /** Bytes of the files this session was created from (what the cache budget counts). */
  bytes: number;
  /** What one ORT run may hold, in the modality's unit (see `budgetFor`): tokens, points or pixels. */
  tokenBudget: number;
  /**
   * Rows per ORT run. 1 when the graph quantizes activations dynamically (DynamicQuantizeLinear
   * computes one scale over the whole batch tensor, so batch-mates and padding would nudge an
   * input's embedding); otherwise MAX_BATCH_ROWS.
   */
  maxRows: number;
  loadMs: number;
  /** Runs in flight on this session; an evicted session is released when the last one ends. */
  users: number;
  evicted: boolean;
};

/**
 * Tokens a kernel embeds between yields to other requests: two 128-token all-MiniLM-L6-v2
 * sequences, ~90 ms on the 2-core dev machine. Each yield costs ~2 ms of wall time in workerd, so
 * one per sequence cost 5% of throughput. Its memory needs no budget (one sequence at a time), so
 * this only bounds how long a slice holds the isolate.
 */
const KERNEL_SLICE_TOKENS = 256;

// Least recently used first (Map keeps insertion order; a hit re-inserts).
const cache = new Map<string, LoadedEncoder>();
const loading = new Map<string, Promise<LoadedEncoder>>();
let peakWasm = 0;

const cachedBytes = () => [...cache.values()].reduce((n, e) => n + e.bytes, 0);
metrics.cacheBytes.collect(cachedBytes);
metrics.cacheSessions.collect(() => cache.size);
/** WASM linear memory in use: ORT's heap plus every kernel instance's. */
const wasmBytes = () => ortMemoryBytes() + kernelMemoryBytes();
metrics.wasmBytes.collect(wasmBytes);
metrics.kernelBytes.collect(kernelMemoryBytes);
metrics.ortInitSeconds.collect(() => ortInitMs() / 1000);
metrics.wasmPeakBytes.collect(() => Math.max(peakWasm, wasmBytes()));

export const wasmPeakBytes = () => Math.max(peakWasm, wasmBytes());
export const cachedSessionKeys = () => [...cache.keys()];

// One ORT run at a time per isolate: runs share the WASM heap, so concurrent micro-batches would
// add up their activations and break the memory budget. The time a run waits for the lock and the
// time it holds it are added to the request's timings (the x-queue-time / x-inference-time headers).
// Runs yield to the event loop once per micro-batch's worth of work: an ORT run never does, so
// without it one request's micro-batches would hold the isolate from start to end, and other
// requests (a /health, a /v1/models, an embeddings call to refuse with a 503) would wait behind all
// of them. Yielding before *every* run starved the encoder instead: int8 runs one row at a time, and
// under 200 clients each yield let a hundred other requests in, so 8 short rows took a second
// (measured: 1.4 embeddings requests/s). The clock cannot time a slice (workerd's stands still
// during compute), so work is counted in the units the token budget is sized in.
let lock: Promise<void> = Promise.resolve();
const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
/** Units run since the encoder last yielded. */
let sinceYield = 0;

/** A run's size for time-slicing: its units (rows × width, pixels, steps) and the model's per-run budget. */
export type RunCost = { units: number; budget: number };

/**
 * Awaits a promise another request settles (the lock, a session it is loading) in this request's
 * own context. The wrapper is created here, so workerd delivers its settling to this request
 * (callbacks hung directly on the other request's promise would run in that request's context,
 * and a timer set there dies with it); the interval keeps this request from looking hung ("would
 * never generate a response") while it waits.
 */
export function heldOpen<T>(shared: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1_000);
  return new Promise<T>((resolve, reject) => {
    shared.then(resolve, reject);
  }).finally(() => clearInterval(timer));
}

/**
 * Runs `fn` holding the encoder lock. In a request: without a `cost` (session create/release) it
 * always yields first; with one it yields only when this run would take the slice past one
 * micro-batch budget. In background work every run takes a turn (lib/priority.ts) before it queues.
 */
export async function exclusive<T>(fn: () => Promise<T>, cost?: RunCost): Promise<T> {
  // Background runs (queue chunks) take their turn before queueing for the lock, so requests in
  // flight get the thread (and the encoder) first; each of their runs is then a slice of its own.
  const background = isBackground();
  if (background) {
    await turn();
    sinceYield = 0;
  }
  const timings = currentTimings();
  const queued = Date.now();
  const previous = lock;
  let release = () => {};
  lock = new Promise<void>((resolve) => {
    release = resolve;
  });
  try {
    await heldOpen(previous);
    if (!background && (!cost || sinceYield + cost.units > cost.budget)) {
      await yieldToEventLoop();
      sinceYield = 0;
    }
    sinceYield += cost?.units ?? 0;
    const began = Date.now();
    if (timings) timings.queueMs += began - queued;
    try {
      return await fn();
    } finally {
      if (timings) timings.inferenceMs += Date.now() - began;
      peakWasm = Math.max(peakWasm, wasmBytes());
    }
  } finally {
    release();
  }
}

/** Drops least recently used sessions until `incoming` more bytes fit the budget. */
async function makeRoom(incoming: number) {
  while (cache.size > 0 && cachedBytes() + incoming > cacheBudget) {
    const [key, victim] = cache.entries().next().value as [string, LoadedEncoder];
    cache.delete(key);
    metrics.cacheEvictions.inc();
    victim.evicted = true;
    if (victim.users === 0) await releaseEncoder(victim);
  }
}

/** Marks `enc` in use for the duration of `fn`, so eviction cannot release it under a request. */
export async function using<T>(enc: LoadedEncoder, fn: () => Promise<T>): Promise<T> {
  enc.users++;
  try {
    return await fn();
  } finally {
    enc.users--;
    if (enc.evicted && enc.users === 0) await releaseEncoder(enc).catch(() => {});
  }
}

const DYNAMIC_QUANT = new TextEncoder().encode("DynamicQuantizeLinear");

/** Whether an ONNX graph holds a DynamicQuantizeLinear node (its op type is stored as plain text). */
export function quantizesActivations(model: Uint8Array): boolean {
  const first = DYNAMIC_QUANT[0] as number;
  outer: for (
    let i = model.indexOf(first);
    i >= 0 && i + DYNAMIC_QUANT.length <= model.length;
    i = model.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < DYNAMIC_QUANT.length; j++) if (model[i + j] !== DYNAMIC_QUANT[j]) continue outer;
    return true;
  }
  return false;
}

async function read(reader: ArtifactReader, version: EncoderVersion, name: string): Promise<Uint8Array> {
  const file = version.files[name];
  if (!file) throw new Error(`version ${version.id} has no file ${name}`);
  const obj = await reader.get(file.key);
  if (!obj) throw new Error(`artifact ${file.key} is missing from storage`);
  const bytes = new Uint8Array(await obj.arrayBuffer());
  // Serve only the bytes the registry verified: an object rewritten after registration (a leaked
  // presigned URL, a confused trainer) fails loudly instead of answering with another model.
  const digest = await sha256Hex(bytes);
  if (digest !== file.sha256) throw new Error(`artifact ${file.key}: sha256 ${digest} != registered ${file.sha256}`);
  return bytes;
}

async function load(reader: ArtifactReader, version: EncoderVersion, precision: Precision, key: string) {
  const started = Date.now();
  const variant = version.manifest.variants[precision];
  if (!variant) throw new Error(`version ${version.id} has no ${precision} variant`);
  await makeRoom(servedBytes(version.manifest, precision));
  const tokenizerJson = version.manifest.modality === "text" ? read(reader, version, "tokenizer.json") : null;
  if (usesKernel(version.manifest, precision) && variant.kernel) {
    const kernel = await read(reader, version, variant.kernel);
    return createKernelEncoder(version, precision, key, kernel, await tokenizerJson, started);
  }
  const [model, data, tokenizerBytes] = await Promise.all([
    read(reader, version, variant.model),
    variant.data ? read(reader, version, variant.data) : Promise.resolve(null),
    tokenizerJson ?? Promise.resolve(null),
  ]);
  return createEncoder(version, precision, key, { model, data, tokenizerJson: tokenizerBytes }, started);
}

const parseTokenizer = (manifest: Manifest, json: Uint8Array | null) =>
  json ? new TextTokenizer(JSON.parse(new TextDecoder().decode(json)), manifest.max_tokens ?? 512) : null;

/** An encoder served by our kernel (kernel.ts) over a verified kernel file. */
export async function createKernelEncoder(
  version: { id: string; manifest: Manifest },
  precision: Precision,
  key: string,
  file: Uint8Array,
  tokenizerJson: Uint8Array | null,
  started = Date.now(),
): Promise<LoadedEncoder> {
  const kernel = await exclusive(() => KernelModel.load(file));
  if (kernel.dims !== version.manifest.dims) {
    kernel.release();
    throw new Error(
      `version ${version.id}: kernel file gives ${kernel.dims} dims, the manifest says ${version.manifest.dims}`,
    );
  }
  return loaded(version, precision, key, started, {
    session: null,
    kernel,
    tokenizer: parseTokenizer(version.manifest, tokenizerJson),
    bytes: servedBytes(version.manifest, precision),
    tokenBudget: KERNEL_SLICE_TOKENS,
    maxRows: MAX_BATCH_ROWS,
  });
}

/** The load's bookkeeping (time, metric) around what the runtime made. */
function loaded(
  version: { id: string; manifest: Manifest },
  precision: Precision,
  key: string,
  started: number,
  made: Pick<LoadedEncoder, "session" | "kernel" | "tokenizer" | "bytes" | "tokenBudget" | "maxRows">,
): LoadedEncoder {
  const loadMs = Date.now() - started;
  metrics.loadSeconds.observe(loadMs / 1000, { precision });
  return {
    key,
    versionId: version.id,
    precision,
    manifest: version.manifest,
    ...made,
    loadMs,
    users: 0,
    evicted: false,
  };
}

/**
 * A session over bytes already in hand (not cached): what `getEncoder` caches, and what the import
 * check runs once on a probe input before registering. Release it with `releaseEncoder`.
 */
export async function createEncoder(
  version: { id: string; manifest: Manifest },
  precision: Precision,
  key: string,
  files: { model: Uint8Array; data: Uint8Array | null; tokenizerJson: Uint8Array | null },
  started = Date.now(),
): Promise<LoadedEncoder> {
  const { ort } = await loadOrt();
  const variant = version.manifest.variants[precision];
  if (!variant) throw new Error(`version ${version.id} has no ${precision} variant`);
  const { model, data, tokenizerJson } = files;
  const bytes = variantBytes(version.manifest, precision);
  const tokenizer = parseTokenizer(version.manifest, tokenizerJson);
  const session = await exclusive(() =>
    ort.InferenceSession.create(model, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      // External data is handed over as bytes under the name the model refers to.
      externalData: variant.data && data ? [{ path: variant.data, data }] : undefined,
    }),
  );
  return loaded(version, precision, key, started, {
    session,
    kernel: null,
    tokenizer,
    bytes,
    tokenBudget: budgetFor(version.manifest, precision),
    maxRows: quantizesActivations(model) ? 1 : MAX_BATCH_ROWS,
  });
}

/** Frees an encoder's session or kernel (evicted from the cache, or made outside it). */
export const releaseEncoder = (enc: LoadedEncoder) =>
  exclusive(async () => {
    enc.kernel?.release();
    await enc.session?.release();
  });

/**
 * The session for a version's variant: from this isolate's LRU cache, or fetched from R2 and
 * created (once, however many requests ask at the same time).
 */
export async function getEncoder(
  reader: ArtifactReader,
  version: EncoderVersion,
  precision: Precision,
): Promise<LoadedEncoder> {
  const key = `${version.id}:${precision}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    metrics.cacheHits.inc();
    return hit;
  }
  let pending = loading.get(key);
  if (!pending) {
    metrics.cacheMisses.inc();
    pending = load(reader, version, precision, key).then(
      (enc) => {
        cache.set(key, enc);
        loading.delete(key);
        return enc;
      },
      (err) => {
        loading.delete(key);
        throw err;
      },
    );
    loading.set(key, pending);
  } else {
    metrics.cacheHits.inc();
    return heldOpen(pending);
  }
  return pending;
}
