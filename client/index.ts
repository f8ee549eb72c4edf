// Typed client for the selfsup API: openapi-fetch over the types generated from /openapi.json
// (client/schema.ts). Used by the CLI and the end-to-end tests.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };
export type Problem = components["schemas"]["Problem"];

export class SelfsupError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem> | null,
  ) {
    super(problem?.detail ?? `HTTP ${status}`);
  }
}

export type ClientOptions = { baseUrl: string; apiKey: string; fetch?: typeof fetch };

export function createSelfsupClient(opts: ClientOptions) {
  return createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/$/, ""),
    headers: { authorization: `Bearer ${opts.apiKey}` },
    ...(opts.fetch ? { fetch: (req: Request) => (opts.fetch as typeof fetch)(req) } : {}),
  });
}

export type SelfsupClient = ReturnType<typeof createSelfsupClient>;

/** Returns `data` or throws a SelfsupError carrying the API's problem document. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || data === undefined) {
    const problem = (error && typeof error === "object" ? error : null) as Partial<Problem> | null;
    throw new SelfsupError(response.status, problem);
  }
  return data;
}
