// Line splitting with a state that survives between queue invocations, and cooperative yielding
// for long CPU loops. Lines are split on the byte 0x0A, never part of a multi-byte UTF-8
// sequence, which lets errors name exact line numbers.
import { turn } from "../lib/priority";

/** A record longer than this is an error (a file with no newlines would otherwise fill the isolate). */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Bytes of CPU work between two yields to the event loop (see `Yielder`). */
export const YIELD_BYTES = 256 * 1024;

/**
 * Cooperative yielding for long CPU loops (hashing, parsing, decoding): `tick(n)` after each piece
 * of work waits one macrotask once `YIELD_BYTES` have gone by, so the isolate answers other
 * requests in between. Counted in bytes, not milliseconds: workerd's clock stands still while code
 * runs, so elapsed time cannot be measured inside a loop. ~256 KiB is a few milliseconds of work.
 */
export class Yielder {
  private since = 0;
  constructor(private readonly every = YIELD_BYTES) {}
  async tick(n: number): Promise<void> {
    this.since += n;
    if (this.since < this.every) return;
    this.since = 0;
    await turn();
  }
}

/** Where a `LineSplitter` stands between two pieces of input: enough to go on in another invocation. */
export type SplitterState = { lines: number; carry: Uint8Array; overlong: boolean };

/**
 * Splits bytes into lines as they come: `onLine(bytes, lineNumber)` for every line (without the
 * newline; a trailing CR stays), `onOverlong(lineNumber)` for lines over MAX_LINE_BYTES, which are
 * skipped. Memory: one line plus one chunk. Its state (`save`) is serialisable, so a background
 * check can stop after any chunk and resume in a later invocation.
 */
export class LineSplitter {
  private lines: number;
  private carry: Uint8Array;
  private overlong: boolean; // inside a line already reported as too long: skip to its end
  constructor(
    private readonly onLine: (raw: Uint8Array, n: number) => void,
    private readonly onOverlong: (n: number) => void,
    saved?: SplitterState,
  ) {
    this.lines = saved?.lines ?? 0;
    this.carry = saved?.carry ?? new Uint8Array(0);
    this.overlong = saved?.overlong ?? false;
  }

  save(): SplitterState {
    return { lines: this.lines, carry: this.carry, overlong: this.overlong };
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
      const piece = chunk.subarray(start, i);
      this.lines++;
      if (this.overlong) this.overlong = false;
      else if (this.carry.length + piece.length > MAX_LINE_BYTES) {
        // Decided on the line's length alone, so where the input was cut never changes the result.
        this.onOverlong(this.lines);
        this.carry = new Uint8Array(0);
      } else if (this.carry.length > 0) {
        const joined = new Uint8Array(this.carry.length + piece.length);
        joined.set(this.carry);
        joined.set(piece, this.carry.length);
        this.carry = new Uint8Array(0);
        this.onLine(joined, this.lines);
      } else this.onLine(piece, this.lines);
      start = i + 1;
    }
    if (start < chunk.length && !this.overlong) {
      const rest = chunk.subarray(start);
      if (this.carry.length + rest.length > MAX_LINE_BYTES) {
        this.onOverlong(this.lines + 1);
        this.overlong = true;
        this.carry = new Uint8Array(0);
      } else {
        const joined = new Uint8Array(this.carry.length + rest.length);
        joined.set(this.carry);
        joined.set(rest, this.carry.length);
        this.carry = joined;
      }
    }
  }

  /** The input ended: the last line (no newline after it) is delivered. Returns the number of lines. */
  end(): number {
    if (this.overlong) this.lines++;
    else if (this.carry.length > 0) this.onLine(this.carry, ++this.lines);
    this.carry = new Uint8Array(0);
    this.overlong = false;
    return this.lines;
  }
}

/**
 * Calls `onLine(bytes, lineNumber)` for every line of `source` and `onOverlong(lineNumber)` for
 * lines over MAX_LINE_BYTES (see `LineSplitter`), yielding to the event loop as it goes.
 * Returns the number of lines.
 */
export async function forEachLine(
  source: AsyncIterable<Uint8Array>,
  onLine: (raw: Uint8Array, n: number) => void,
  onOverlong: (n: number) => void,
): Promise<number> {
  const split = new LineSplitter(onLine, onOverlong);
  const yielder = new Yielder();
  for await (const chunk of source) {
    // Large chunks (a gunzipped block can be MiBs) are split so no stretch runs long without a yield.
    for (let at = 0; at < chunk.length; at += YIELD_BYTES) {
      const piece = chunk.subarray(at, at + YIELD_BYTES);
      split.push(piece);
      await yielder.tick(piece.length);
    }
  }
  return split.end();
}
