import type { AdmissionLimits } from "./services/encoder/admission";
import type { Precision } from "./services/encoder/sessions";

/** Deployment knobs from wrangler vars, parsed once per request by `init` and read from the context. */
export type Settings = {
  /** EMBED_PRECISION: auto | int8 | fp32 — the default precision when a request says `auto`. */
  precision: Precision | "auto";
  /** EMBED_BATCH_TOKENS overrides the micro-batch token budget, EMBED_MAX_BATCH_ROWS caps rows per run. */
  batching: { tokens?: number; maxRows?: number };
  /**
   * EMBED_MAX_QUEUE: encoder requests that may wait per isolate (default 64; more get a 503);
   * EMBED_TENANT_TOKENS_PER_MINUTE: a tenant's token rate per isolate (default 1,000,000; 0 = off;
   * over it, a 429). Both answer with Retry-After.
   */
  admission: AdmissionLimits;
};

export const DEFAULT_MAX_QUEUE = 64;
export const DEFAULT_TENANT_TOKENS_PER_MINUTE = 1_000_000;

type Vars = {
  EMBED_PRECISION?: string;
  EMBED_BATCH_TOKENS?: string;
  EMBED_MAX_BATCH_ROWS?: string;
  EMBED_MAX_QUEUE?: string;
  EMBED_TENANT_TOKENS_PER_MINUTE?: string;
};

export function parseSettings(env: Vars): Settings {
  const v = env.EMBED_PRECISION;
  const whole = (s: string | undefined) => (s && /^[0-9]+$/.test(s) ? Number(s) : undefined);
  const num = (s: string | undefined) => {
    const n = whole(s);
    return n !== undefined && n > 0 ? n : undefined;
  };
  return {
    precision: v === "fp32" || v === "int8" ? v : "auto",
    batching: { tokens: num(env.EMBED_BATCH_TOKENS), maxRows: num(env.EMBED_MAX_BATCH_ROWS) },
    admission: {
      // 0 waiting is a valid setting (one request at a time per isolate, the rest refused).
      maxQueue: whole(env.EMBED_MAX_QUEUE) ?? DEFAULT_MAX_QUEUE,
      tenantTokensPerMinute: whole(env.EMBED_TENANT_TOKENS_PER_MINUTE) ?? DEFAULT_TENANT_TOKENS_PER_MINUTE,
    },
  };
}
