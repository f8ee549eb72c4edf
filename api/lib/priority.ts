// Interactive requests before background work, inside one isolate. Queue chunks (dataset checks,
// probe fits, evaluations) share the isolate's single thread with requests; yielding one macrotask
// between slices was not enough: a request that needs three I/O round trips (auth, D1, D1) lost the
// thread to a background slice after each one, so `GET /v1/models` took ~3 slices (p50 222 ms, p95
// 526 ms during a MiniLM evaluation). Background turns now also wait while a request is in flight,
// up to MAX_DEFER_MS per turn so that a steady stream of requests slows background work but
// cannot stop it.
import { AsyncLocalStorage } from "node:async_hooks";

/**
 * How long a background turn leaves the thread idle. A zero-delay timer was not enough under
 * `wrangler dev`, where the entry worker, D1 and R2 share workerd's thread: a request had not
 * reached our handler (so was not counted in flight) when the timer fired, and every hop waited
 * for the next slice. Idle for a moment, the request gets in and is counted.
 */
export const PAUSE_MS = 3;

/** Longest a background turn waits for in-flight requests before it goes on anyway. */
export const MAX_DEFER_MS = 250;

let inFlight = 0;
const background = new AsyncLocalStorage<true>();
const macrotask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A PAUSE_MS pause inside one background slice (between a long sequence's layers). */
export const pause = () => sleep(PAUSE_MS);

/** Counts a request as in flight until the returned function is called (once). */
export function requestStarted(): () => void {
  inFlight++;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    inFlight--;
  };
}

export const requestsInFlight = () => inFlight;

/** Runs `fn` as background work: its turns (`turn()`) give way to requests. */
export const inBackground = <T>(fn: () => Promise<T>): Promise<T> => background.run(true, fn);

export const isBackground = () => background.getStore() === true;

/**
 * A turn of the event loop between two pieces of CPU work. In a request it is one macrotask (I/O
 * and other requests that became ready run first); in background work it is a PAUSE_MS pause, then
 * a wait in 2 ms steps while requests are in flight (at most MAX_DEFER_MS). Workerd's clock
 * advances across timers, so the cap is real time.
 */
export async function turn(): Promise<void> {
  if (!isBackground()) return macrotask();
  await sleep(PAUSE_MS);
  if (inFlight === 0) return;
  const until = Date.now() + MAX_DEFER_MS;
  while (inFlight > 0 && Date.now() < until) await sleep(2);
  // The handlers returned, but their answers still have to be written out by workerd on this same
  // thread: a slice started right away delayed them by its length (seen as ~100-200 ms between a
  // handler's end and the client's receipt). One more pause lets them go first.
  await sleep(PAUSE_MS);
}
