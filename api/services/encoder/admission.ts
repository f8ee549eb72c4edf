// Backpressure for the encoder (issue 15): an isolate runs one ORT run at a time, so a burst of
// requests used to wait in an unbounded line and all finish together minutes later. Now a request
// is admitted only while fewer than EMBED_MAX_QUEUE others wait for the encoder (else 503), and
// only while its tenant's token bucket is not in debt (else 429); both answers carry Retry-After,
// which the OpenAI SDKs honour when they retry. Both limits are per isolate: Cloudflare spreads
// load over many isolates, each with its own line and its own buckets.
import { AsyncLocalStorage } from "node:async_hooks";
import { ApiError } from "../../lib/errors";

/** What one request spent waiting for the encoder lock and holding it (ms), summed over its runs. */
export type Timings = { queueMs: number; inferenceMs: number };

const timingStore = new AsyncLocalStorage<Timings>();

/** The timings of the request whose async context calls this, if it is being measured. */
export const currentTimings = () => timingStore.getStore();

/** Runs `fn` with `timings` as the request's accumulator (read by `exclusive`). */
export const measured = <T>(timings: Timings, fn: () => Promise<T>): Promise<T> => timingStore.run(timings, fn);

export type AdmissionLimits = {
  /** Requests that may wait behind the one holding the encoder. */
  maxQueue: number;
  /** Tokens (model-input units) per tenant per minute; 0 turns the limit off. */
  tenantTokensPerMinute: number;
};

/** Longest Retry-After we send: the OpenAI SDKs ignore anything over 60 s and back off on their own. */
const MAX_RETRY_AFTER_S = 60;

/**
 * Admitted requests by ticket → admission time. A request the runtime cancels (its client went
 * away) never reaches `release`; it stops counting after STALE_MS instead of holding a place forever.
 */
const admitted = new Map<number, number>();
let nextTicket = 0;
const STALE_MS = 5 * 60_000;
function activeCount(now: number): number {
  for (const [ticket, since] of admitted) if (since < now - STALE_MS) admitted.delete(ticket);
  return admitted.size;
}
/** Moving average of how long an admitted request holds its place (ms), for the 503's Retry-After. */
let avgHoldMs = 250;

type Bucket = { level: number; at: number };
const buckets = new Map<string, Bucket>();
/** Tenants tracked per isolate; the longest idle go first (an idle tenant's bucket is full anyway). */
const MAX_BUCKETS = 10_000;

const retryHeaders = (ms: number) => {
  const s = Math.min(Math.max(Math.ceil(ms / 1000), 1), MAX_RETRY_AFTER_S);
  return { "retry-after": String(s), "retry-after-ms": String(Math.min(Math.max(Math.ceil(ms), 1), s * 1000)) };
};

function bucketOf(tenantId: string, perMinute: number, now: number): Bucket {
  const rate = perMinute / 60_000;
  const b = buckets.get(tenantId) ?? { level: perMinute, at: now };
  b.level = Math.min(perMinute, b.level + Math.max(0, now - b.at) * rate);
  b.at = now;
  buckets.delete(tenantId);
  buckets.set(tenantId, b);
  if (buckets.size > MAX_BUCKETS) buckets.delete(buckets.keys().next().value as string);
  return b;
}

/** A place in the encoder's line; `release` with the units the request computed. */
export type Admission = { release(units: number): void };

/**
 * Admits one encoder request of `tenantId`, or refuses it.
 *
 * @throws ApiError 429 `rate_limit_exceeded` while the tenant's bucket is in debt (a request is
 *   admitted while any token is left and pays its whole cost after it ran, so a big request can
 *   overdraw), 503 `server_overloaded` while `maxQueue` requests already wait; both with
 *   Retry-After (seconds) and retry-after-ms.
 */
export function admit(tenantId: string, limits: AdmissionLimits, now = Date.now()): Admission {
  const perMinute = limits.tenantTokensPerMinute;
  const bucket = perMinute > 0 ? bucketOf(tenantId, perMinute, now) : null;
  if (bucket && bucket.level <= 0) {
    const waitMs = (1 - bucket.level) / (perMinute / 60_000);
    throw new ApiError(
      429,
      "rate_limit_exceeded",
      `This tenant used its ${perMinute} tokens per minute (EMBED_TENANT_TOKENS_PER_MINUTE); retry after the Retry-After seconds.`,
      { headers: retryHeaders(waitMs) },
    );
  }
  const active = activeCount(now);
  if (active >= limits.maxQueue + 1) {
    throw new ApiError(
      503,
      "server_overloaded",
      `The encoder already has ${active - 1} requests waiting (EMBED_MAX_QUEUE=${limits.maxQueue}); retry after the Retry-After seconds.`,
      { headers: retryHeaders(active * avgHoldMs) },
    );
  }
  const ticket = nextTicket++;
  admitted.set(ticket, now);
  return {
    release(units: number) {
      if (!admitted.delete(ticket)) return;
      const held = Date.now() - now;
      avgHoldMs = avgHoldMs * 0.8 + held * 0.2;
      if (perMinute > 0) bucketOf(tenantId, perMinute, Date.now()).level -= units;
    },
  };
}

/** Requests admitted and not yet released in this isolate (for tests and /metrics). */
export const admittedRequests = () => activeCount(Date.now());
