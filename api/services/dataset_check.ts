// Checks a dataset object before anything may train on it: SHA-256 of the stored bytes, gzip
// integrity, strict UTF-8, the record format, and stats. It streams with bounded memory (lines are
// capped at MAX_LINE_BYTES, duplicate tracking at MAX_TRACKED_LINES). Lines are split on the byte
// 0x0A, never part of a multi-byte UTF-8 sequence, which lets errors name exact line numbers.
// Image and time-series sets have their own checks (dataset_check_image.ts, dataset_check_series.ts)
// built on the helpers here; every check returns the same CheckResult.

export const TEXT_FORMATS = ["txt", "jsonl", "txt.gz", "jsonl.gz"] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

/** One problem found in a dataset: where (line, column, archive member) and what to do about it. */
export type DatasetIssue = { line?: number; column?: string; member?: string; message: string };
export type DatasetStats = {
  records: number;
  bytes: number;
  decompressed_bytes: number;
  lines: number;
  empty: number;
  duplicates: number;
  mean_length: number;
  max_length: number;
  /** false when the file had more distinct lines than are tracked (duplicates then undercounted). */
  duplicates_exact?: boolean;
  labels?: Record<string, number>;
};
export type CheckResult<S = DatasetStats> = { sha256: string; stats: S; errors: DatasetIssue[] };

/** Issues kept per check; the rest are counted in a final "and N more" issue by `Issues.list`. */
export const MAX_REPORTED = 20;
/** A record longer than this is an error (a file with no newlines would otherwise fill the isolate). */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Distinct lines remembered for duplicate counting; past it, duplicates are counted among these only. */
const MAX_TRACKED_LINES = 500_000;

/** The first MAX_REPORTED issues, and how many more there were. */
export class Issues {
  readonly kept: DatasetIssue[] = [];
  dropped = 0;
  add(issue: DatasetIssue) {
    if (this.kept.length < MAX_REPORTED) this.kept.push(issue);
    else this.dropped++;
  }
  get count() {
    return this.kept.length + this.dropped;
  }
  list(what = "problems"): DatasetIssue[] {
    return this.dropped > 0 ? [...this.kept, { message: `and ${this.dropped} more ${what} like these` }] : this.kept;
  }
}

/**
 * The object's chunks with SHA-256 and byte count computed on the way through, so a check reads
 * R2 once. `finish` hashes whatever the parser did not read and returns the hex digest.
 */
export function hashedSource(body: ReadableStream<Uint8Array>) {
  const digest = new crypto.DigestStream("SHA-256");
  const writer = digest.getWriter();
  const reader = body.getReader();
  let bytes = 0;
  // Pulls are serialized: the chunk order the digest sees must be the file's order.
  let chain: Promise<unknown> = Promise.resolve();
  const pull = async (): Promise<IteratorResult<Uint8Array>> => {
    const r = await reader.read();
    if (r.done) return { done: true, value: undefined };
    bytes += r.value.byteLength;
    await writer.write(r.value);
    return { done: false, value: r.value };
  };
  const iterator: AsyncIterableIterator<Uint8Array> = {
    next: () => {
      const p = chain.then(pull);
      chain = p.catch(() => undefined);
      return p;
    },
    // A parser that stops early must not end the stream: `finish` still hashes the rest.
    return: async () => ({ done: true, value: undefined }),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return {
    chunks: iterator as AsyncIterable<Uint8Array>,
    bytes: () => bytes,
    async finish(): Promise<string> {
      for (;;) if ((await iterator.next()).done) break;
      await writer.close();
      return [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    },
  };
}

/**
 * Calls `onLine(bytes, lineNumber)` for every line of `source` (without the newline; a trailing
 * CR stays), and `onOverlong(lineNumber)` for lines over MAX_LINE_BYTES, which are skipped.
 * Returns the number of lines. Memory: one line plus one chunk.
 */
export async function forEachLine(
  source: AsyncIterable<Uint8Array>,
  onLine: (raw: Uint8Array, n: number) => void,
  onOverlong: (n: number) => void,
): Promise<number> {
  let lines = 0;
  let carry = new Uint8Array(0);
  let overlong = false; // inside a line already reported as too long: skip to its end
  for await (const chunk of source) {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0x0a) continue;
      const piece = chunk.subarray(start, i);
      lines++;
      if (overlong) overlong = false;
      else if (carry.length > 0) {
        const joined = new Uint8Array(carry.length + piece.length);
        joined.set(carry);
        joined.set(piece, carry.length);
        carry = new Uint8Array(0);
        onLine(joined, lines);
      } else onLine(piece, lines);
      start = i + 1;
    }
    if (start < chunk.length && !overlong) {
      const rest = chunk.subarray(start);
      if (carry.length + rest.length > MAX_LINE_BYTES) {
        onOverlong(lines + 1);
        overlong = true;
        carry = new Uint8Array(0);
      } else {
        const joined = new Uint8Array(carry.length + rest.length);
        joined.set(carry);
        joined.set(rest, carry.length);
        carry = joined;
      }
    }
  }
  if (overlong) lines++;
  else if (carry.length > 0) onLine(carry, ++lines);
  return lines;
}

/** Counts decompressed bytes on the way through. */
export function counted(source: AsyncIterable<Uint8Array>, onBytes: (n: number) => void): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      for await (const c of source) {
        onBytes(c.byteLength);
        yield c;
      }
    },
  };
}

/** `source`, gunzipped when the format ends in `.gz`. */
export function maybeGunzip(source: AsyncIterable<Uint8Array>, format: string): AsyncIterable<Uint8Array> {
  if (!format.endsWith(".gz")) return source;
  const it = source[Symbol.asyncIterator]();
  const raw = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const r = await it.next();
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
  });
  return raw.pipeThrough(new DecompressionStream("gzip"));
}

/** The message for a stream that failed mid-read. */
export const readFailure = (format: string, e: unknown) =>
  format.endsWith(".gz")
    ? `gzip stream is corrupt or truncated (${(e as Error).message})`
    : `could not read the file (${(e as Error).message})`;

/** FNV-1a 32-bit, twice with different seeds: a 52-bit key for duplicate counting without storing lines. */
function lineKey(bytes: Uint8Array): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < bytes.length; i++) {
    const x = bytes[i] as number;
    a = Math.imul(a ^ x, 0x01000193);
    b = Math.imul(b ^ x, 0x5bd1e995);
  }
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff);
}

export async function checkTextDataset(
  body: ReadableStream<Uint8Array>,
  opts: { format: TextFormat; purpose: "pretrain" | "probe" },
): Promise<CheckResult> {
  const source = hashedSource(body);
  const errors: DatasetIssue[] = [];
  const report = (line: number | undefined, message: string) => {
    if (errors.length < MAX_REPORTED) errors.push(line === undefined ? { message } : { line, message });
  };
  const stats: DatasetStats = {
    records: 0,
    bytes: 0,
    decompressed_bytes: 0,
    lines: 0,
    empty: 0,
    duplicates: 0,
    mean_length: 0,
    max_length: 0,
  };
  const labels = new Map<string, number>();
  const seen = new Set<number>();
  let totalLength = 0;
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const jsonl = opts.format.startsWith("jsonl");

  const onLine = (raw: Uint8Array, n: number) => {
    stats.lines = n;
    let text: string;
    try {
      text = decoder.decode(raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw);
    } catch {
      report(n, "not valid UTF-8; re-encode the file as UTF-8");
      return;
    }
    if (text.trim() === "") {
      stats.empty++;
      return;
    }
    let content = text;
    if (jsonl) {
      let rec: unknown;
      try {
        rec = JSON.parse(text);
      } catch {
        report(n, "not valid JSON; each line must be one JSON object");
        return;
      }
      const r = rec as { text?: unknown; label?: unknown };
      if (typeof rec !== "object" || rec === null || typeof r.text !== "string") {
        report(n, 'missing a string "text" field');
        return;
      }
      content = r.text;
      if (opts.purpose === "probe") {
        if (typeof r.label !== "string" && typeof r.label !== "number") {
          report(n, 'a probe set needs a "label" (string or number) on every record');
          return;
        }
        labels.set(String(r.label), (labels.get(String(r.label)) ?? 0) + 1);
      }
    }
    const key = lineKey(raw);
    if (seen.has(key)) {
      stats.duplicates++;
      return;
    }
    if (seen.size < MAX_TRACKED_LINES) seen.add(key);
    else stats.duplicates_exact = false;
    stats.records++;
    totalLength += content.length;
    stats.max_length = Math.max(stats.max_length, content.length);
  };

  try {
    const decompressed = counted(maybeGunzip(source.chunks, opts.format), (n) => {
      stats.decompressed_bytes += n;
    });
    stats.lines = await forEachLine(decompressed, onLine, (n) => {
      stats.lines = n;
      report(n, `longer than ${MAX_LINE_BYTES} bytes; put one record per line`);
    });
  } catch (e) {
    report(undefined, readFailure(opts.format, e));
  }
  const sha256 = await source.finish();
  stats.bytes = source.bytes();

  stats.mean_length = stats.records > 0 ? Math.round((totalLength / stats.records) * 10) / 10 : 0;
  if (opts.purpose === "probe") {
    stats.labels = Object.fromEntries([...labels.entries()].sort(([a], [b]) => a.localeCompare(b)));
    if (errors.length === 0 && labels.size < 2)
      report(undefined, `a probe set needs at least 2 labels; found ${labels.size}`);
  }
  if (errors.length === 0 && stats.records === 0)
    report(undefined, "no usable record: the file is empty or every line is blank");
  return { sha256, stats, errors };
}
