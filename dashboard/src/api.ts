// The dashboard's only door to the API: same-origin fetches with the signed-in key, and every
// failure turned into an ApiError whose problem (RFC 9457 title/detail) the pages show as text.

export type Problem = { title?: string; detail?: string };

export class ApiError extends Error {
  status: number;
  problem: Problem | null;
  constructor(status: number, problem: Problem | null, message?: string) {
    super(message ?? problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }
}

export type Api = {
  get<T>(path: string, signal?: AbortSignal): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  del(path: string): Promise<void>;
};

async function problemOf(res: Response): Promise<Problem | null> {
  const text = await res.text().catch(() => "");
  if (!text) return null;
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === "object") {
      const b = body as Record<string, unknown>;
      // The OpenAI-compatible routes answer {error: {message}}; everything else is problem+json.
      const err = b.error as Record<string, unknown> | undefined;
      const title = typeof b.title === "string" ? b.title : undefined;
      const detail =
        typeof b.detail === "string" ? b.detail : typeof err?.message === "string" ? err.message : undefined;
      return { title, detail };
    }
  } catch {
    // not JSON: show the start of the text itself
  }
  return { detail: text.slice(0, 300) };
}

export function makeApi(key: string, base = ""): Api {
  async function call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      const why = e instanceof Error ? e.message : String(e);
      throw new ApiError(0, { title: "API down", detail: `The API is not reachable (${why}).` });
    }
    if (!res.ok) {
      const problem = await problemOf(res);
      throw new ApiError(res.status, { title: problem?.title ?? `HTTP ${res.status}`, detail: problem?.detail });
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
  return {
    get: (path, signal) => call("GET", path, undefined, signal),
    post: (path, body) => call("POST", path, body ?? {}),
    put: (path, body) => call("PUT", path, body),
    del: async (path) => {
      await call<void>("DELETE", path);
    },
  };
}
