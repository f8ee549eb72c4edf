import type { Precision } from "./services/encoder/sessions";

/** Deployment knobs from wrangler vars, parsed once per request by `init` and read from the context. */
export type Settings = {
  /** EMBED_PRECISION: auto | int8 | fp32 — the default precision when a request says `auto`. */
  precision: Precision | "auto";
  /** EMBED_BATCH_TOKENS overrides the micro-batch token budget, EMBED_MAX_BATCH_ROWS caps rows per run. */
  batching: { tokens?: number; maxRows?: number };
};

type Vars = { EMBED_PRECISION?: string; EMBED_BATCH_TOKENS?: string; EMBED_MAX_BATCH_ROWS?: string };

export function parseSettings(env: Vars): Settings {
  const v = env.EMBED_PRECISION;
  const num = (s: string | undefined) => (s && /^[0-9]+$/.test(s) && Number(s) > 0 ? Number(s) : undefined);
  return {
    precision: v === "fp32" || v === "int8" ? v : "auto",
    batching: { tokens: num(env.EMBED_BATCH_TOKENS), maxRows: num(env.EMBED_MAX_BATCH_ROWS) },
  };
}
