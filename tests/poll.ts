// One way to wait for background work (evaluations, probes over datasets, dataset checks): poll the
// resource until its status leaves the working one. Plain fetch callbacks, so the Workers tests,
// the Node-side e2e tests and scripts can share it.

/** Statuses that mean "still working" on any resource the work queue advances. */
const WORKING = new Set(["running", "fitting", "validating"]);

/**
 * Calls `get` until `done(body)` holds and returns that body.
 *
 * @throws Error with the last body when `timeoutMs` passes first.
 */
export async function pollUntil<T>(
  get: () => Promise<T>,
  done: (body: T) => boolean,
  { timeoutMs = 50_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await get();
    if (done(body)) return body;
    if (Date.now() > deadline)
      throw new Error(`still working after ${timeoutMs} ms: ${JSON.stringify(body).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls until `status` is final (succeeded / failed, ready / failed, …) and returns the body. */
export const settled = <T extends { status: string }>(get: () => Promise<T>, opts?: { timeoutMs?: number }) =>
  pollUntil(get, (b) => !WORKING.has(b.status), opts);

/**
 * The resource a 202 answer started, once its work settled: `res` must be 202 with the resource's
 * `id`; `get(id)` fetches it again (GET /v1/evaluations/{id}, /v1/probes/{id}, …).
 */
export async function afterAccepted<T extends { id: string; status: string }>(
  res: Response,
  get: (id: string) => Promise<Response>,
  opts?: { timeoutMs?: number },
): Promise<T> {
  const text = await res.text();
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${text}`);
  const { id } = JSON.parse(text) as T;
  return settled(async () => (await get(id)).json() as Promise<T>, opts);
}
