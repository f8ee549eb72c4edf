// Secrets are not in wrangler.toml, so `wrangler types` cannot see them: `wrangler secret put` sets
// them in production, .dev.vars (written by `make dev`) locally, vitest.config.ts in tests.
interface SelfsupSecrets {
  /** R2 S3-API token, used only to presign upload/download URLs. */
  S3_ACCESS_KEY_ID: string;
  S3_SECRET_ACCESS_KEY: string;
  /** Optional override of the 60 s trainer lease. */
  TRAINER_LEASE_SECONDS?: string;
  /** Optional embedding knobs (wrangler vars), parsed once by api/settings.ts. */
  EMBED_PRECISION?: string;
  EMBED_BATCH_TOKENS?: string;
  EMBED_MAX_BATCH_ROWS?: string;
  /** Encoder requests that may wait per isolate (default 64), and a tenant's tokens per minute (0 = off). */
  EMBED_MAX_QUEUE?: string;
  EMBED_TENANT_TOKENS_PER_MINUTE?: string;
}
interface Env extends SelfsupSecrets {}
declare namespace Cloudflare {
  interface Env extends SelfsupSecrets {}
}

// workerd provides node:async_hooks under nodejs_compat (wrangler.toml); the API's tsconfig has no
// Node types, so this is the one piece of it admission.ts uses.
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    getStore(): T | undefined;
    run<R>(store: T, fn: () => R): R;
  }
}
