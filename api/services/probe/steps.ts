// Cooperative fitting. The fits (L-BFGS, MLP epochs, kNN votes) are written once as generators that
// `yield` an estimate of the work (multiply-adds) done since their last yield. `runSync` drives one
// straight through (short fits inside a request, scikit-learn parity tests); `runYielding` drives it
// from the work queue and gives the event loop a turn every few million operations, so the isolate
// that runs a 4000-item evaluation keeps answering requests. Work is counted, not timed: workerd's
// clock stands still while JavaScript computes.

import { turn } from "../../lib/priority";

/** A fit in progress: yields work done, returns its result. */
export type Steps<T> = Generator<number, T, void>;

/** Work between two turns of the event loop: ~15 ms on a Worker (a turn costs ~1-2 ms, so fewer would slow fits). */
export const WORK_PER_TURN = 25_000_000;

/**
 * Weight of one multiply-add in plain JavaScript (sparse rows, L-BFGS's vector updates) against the
 * WASM SIMD kernels WORK_PER_TURN was measured on: scalar float64 through index arrays runs ~2x slower.
 */
export const JS_WORK = 2;

export function runSync<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export async function runYielding<T>(steps: Steps<T>, perTurn = WORK_PER_TURN): Promise<T> {
  let work = 0;
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    work += r.value;
    if (work >= perTurn) {
      work = 0;
      // lib/priority.ts: what became ready runs first; background work also waits for requests.
      await turn();
    }
  }
}
