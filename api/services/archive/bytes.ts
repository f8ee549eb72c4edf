// Byte-level plumbing shared by the archive readers: a pull reader over a chunk stream (so a reader
// holds one member at a time, never the whole archive) and bounded collection.

/** A structural problem with an archive or one of its members; `message` is shown to the uploader. */
export class ArchiveError extends Error {
  override name = "ArchiveError";
}

/**
 * Reads exact byte counts from an async chunk source, tracking the absolute position. Buffers only
 * what a `read` asks for; `skip` and `take` pass bytes through without keeping them.
 */
export class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  /** Bytes consumed so far (read, skipped or taken). */
  position = 0;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  static from(stream: AsyncIterable<Uint8Array>): ByteReader {
    return new ByteReader(stream[Symbol.asyncIterator]());
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.source.next();
      if (r.done) this.ended = true;
      else if (r.value.byteLength > 0) {
        this.chunks.push(r.value);
        this.buffered += r.value.byteLength;
      }
    }
  }

  /** Takes up to `n` buffered bytes off the front (after `fill`), without copying when one chunk has them. */
  private shift(n: number): Uint8Array {
    const first = this.chunks[0];
    if (!first) return new Uint8Array(0);
    if (first.byteLength >= n) {
      const out = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      this.position += n;
      return out;
    }
    const out = new Uint8Array(Math.min(n, this.buffered));
    let at = 0;
    while (at < out.length) {
      const c = this.chunks[0] as Uint8Array;
      const k = Math.min(c.byteLength, out.length - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= out.length;
    this.position += out.length;
    return out;
  }

  /** Exactly `n` bytes, or fewer when the source ends first (the caller reports truncation). */
  async read(n: number): Promise<Uint8Array> {
    await this.fill(n);
    return this.shift(n);
  }

  /** Discards `n` bytes; returns how many there were (fewer at the end of the source). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) await this.fill(1);
      if (this.buffered === 0) break;
      left -= this.shift(Math.min(left, (this.chunks[0] as Uint8Array).byteLength)).byteLength;
    }
    return n - left;
  }

  /** The next `n` bytes as they arrive, chunk by chunk; ends early when the source does. */
  async *take(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) await this.fill(1);
      if (this.buffered === 0) return;
      const piece = this.shift(Math.min(left, (this.chunks[0] as Uint8Array).byteLength));
      left -= piece.byteLength;
      yield piece;
    }
  }

  /** Stops reading: the source is told so (an R2 body is cancelled rather than left open). */
  async close(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    this.ended = true;
    await this.source.return?.();
  }

  /** True when every byte has been consumed. */
  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buffered === 0;
  }
}

/** Concatenates a chunk stream, failing with `tooLarge()`'s message as soon as it passes `max` bytes. */
export async function collect(
  chunks: AsyncIterable<Uint8Array>,
  max: number,
  tooLarge: (max: number) => string,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const c of chunks) {
    total += c.byteLength;
    if (total > max) throw new ArchiveError(tooLarge(max));
    parts.push(c);
  }
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Gunzips a chunk stream with the runtime's native decompressor. */
export function gunzip(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return toStream(chunks).pipeThrough(new DecompressionStream("gzip"));
}

export function toStream(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const r = await it.next();
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}
