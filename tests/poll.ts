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
    if (Date.now() > deadline) throw new Error(`still working after ${timeoutMs} ms: ${JSON.stringify(body).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls until `status` is final (succeeded / failed, ready / failed, …) and returns the body. */
export const settled = <T extends { status: string }>(get: () => Promise<T>, opts?: { timeoutMs?: number }) =>
  pollUntil(get, (b) => !WORKING.has(b.status), opts);
