// Checks a dataset object before anything may train on it: SHA-256 of the stored bytes, gzip
// integrity, strict UTF-8, the record format, and stats. It streams with bounded memory (lines are
// capped at MAX_LINE_BYTES, duplicate tracking at MAX_TRACKED_LINES). Lines are split on the byte
// 0x0A, never part of a multi-byte UTF-8 sequence, which lets errors name exact line numbers.
// Line splitting and cooperative yielding live in dataset_check_lines.ts.
// Image and time-series sets have their own checks (dataset_check_image.ts, dataset_check_series.ts)
// built on the helpers here; every check returns the same CheckResult.
import { turn } from "../lib/priority";
import { forEachLine, MAX_LINE_BYTES } from "./dataset_check_lines";

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
export { forEachLine, LineSplitter, MAX_LINE_BYTES, Yielder } from "./dataset_check_lines";

export type CheckResult<S = DatasetStats> = { sha256: string; stats: S; errors: DatasetIssue[] };

/** Issues kept per check; the rest are counted in a final "and N more" issue by `Issues.list`. */
export const MAX_REPORTED = 20;
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

/** A check's state between two queue invocations: JSON, plus the duplicate keys as raw numbers (large). */
export type SavedCheck = { json: Record<string, unknown>; keys?: Float64Array };

/**
 * A line-by-line check (text, time series) whose whole state can be saved after any line and
 * restored in another invocation (dataset_check_resume.ts). Fed by a LineSplitter.
 */
export interface LineCheck<S = Record<string, unknown>> {
  onLine(raw: Uint8Array, n: number): void;
  onOverlong(n: number): void;
  /** Bytes after any gzip layer (the file's own bytes when there is none). */
  addDecompressed(n: number): void;
  /** The stream failed mid-read (corrupt gzip): one issue, the check ends. */
  readFailed(message: string): void;
  finish(sha256: string, bytes: number, lines: number): CheckResult<S>;
  /** The state to resume from; asynchronous so large states are built between yields. */
  save(): Promise<SavedCheck>;
}

/** Keys moved per slice between two yields when a saved key set is read or written. */
const KEY_SLICE = 32_768;

/**
 * Runs a LineCheck over a whole stream in one go (gzip cannot be resumed mid-stream, so gzipped
 * sets always take this path), hashing with the native DigestStream on the way.
 */
export async function runLineCheck<S>(
  check: LineCheck<S>,
  body: ReadableStream<Uint8Array>,
  format: string,
): Promise<CheckResult<S>> {
  const source = hashedSource(body);
  let lines = 0;
  try {
    const decompressed = counted(maybeGunzip(source.chunks, format), (n) => check.addDecompressed(n));
    lines = await forEachLine(
      decompressed,
      (raw, n) => check.onLine(raw, n),
      (n) => check.onOverlong(n),
    );
  } catch (e) {
    check.readFailed(readFailure(format, e));
  }
  const sha256 = await source.finish();
  return check.finish(sha256, source.bytes(), lines);
}

export function checkTextDataset(
  body: ReadableStream<Uint8Array>,
  opts: { format: TextFormat; purpose: "pretrain" | "probe" },
): Promise<CheckResult> {
  return runLineCheck(new TextCheck(opts), body, opts.format);
}

/** The text check (UTF-8, txt/jsonl records, probe labels, duplicates, lengths) as a LineCheck. */
export class TextCheck implements LineCheck<DatasetStats> {
  private readonly errors: DatasetIssue[];
  private readonly stats: DatasetStats;
  private readonly labels: Map<string, number>;
  private readonly seen: Set<number>;
  private totalLength: number;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  private readonly jsonl: boolean;

  constructor(
    private readonly opts: { format: TextFormat; purpose: "pretrain" | "probe" },
    saved?: SavedCheck,
  ) {
    const j = saved?.json as
      | { errors: DatasetIssue[]; stats: DatasetStats; labels: Record<string, number>; totalLength: number }
      | undefined;
    this.errors = j?.errors ?? [];
    this.stats = j?.stats ?? {
      records: 0,
      bytes: 0,
      decompressed_bytes: 0,
      lines: 0,
      empty: 0,
      duplicates: 0,
      mean_length: 0,
      max_length: 0,
    };
    this.labels = new Map(Object.entries(j?.labels ?? {}));
    this.seen = new Set();
    this.totalLength = j?.totalLength ?? 0;
    this.jsonl = opts.format.startsWith("jsonl");
  }

  /**
   * Restores the duplicate keys of a saved check (up to MAX_TRACKED_LINES, a few MB), yielding
   * between slices: building a set of half a million keys at once would hold the isolate ~100 ms.
   */
  async loadKeys(keys: Float64Array): Promise<void> {
    for (let at = 0; at < keys.length; at += KEY_SLICE) {
      const end = Math.min(keys.length, at + KEY_SLICE);
      for (let i = at; i < end; i++) this.seen.add(keys[i] as number);
      if (end < keys.length) await turn();
    }
  }

  async save(): Promise<SavedCheck> {
    const keys = new Float64Array(this.seen.size);
    let i = 0;
    for (const k of this.seen) {
      keys[i++] = k;
      if (i % KEY_SLICE === 0) await turn();
    }
    return {
      json: {
        errors: this.errors,
        stats: this.stats,
        labels: Object.fromEntries(this.labels),
        totalLength: this.totalLength,
      },
      keys,
    };
  }

  private report(line: number | undefined, message: string) {
    if (this.errors.length < MAX_REPORTED) this.errors.push(line === undefined ? { message } : { line, message });
  }

  addDecompressed(n: number) {
    this.stats.decompressed_bytes += n;
  }

  readFailed(message: string) {
    this.report(undefined, message);
  }

  onOverlong(n: number) {
    this.stats.lines = n;
    this.report(n, `longer than ${MAX_LINE_BYTES} bytes; put one record per line`);
  }

  onLine(raw: Uint8Array, n: number) {
    const stats = this.stats;
    stats.lines = n;
    let text: string;
    try {
      text = this.decoder.decode(raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw);
    } catch {
      this.report(n, "not valid UTF-8; re-encode the file as UTF-8");
      return;
    }
    if (text.trim() === "") {
      stats.empty++;
      return;
    }
    let content = text;
    if (this.jsonl) {
      let rec: unknown;
      try {
        rec = JSON.parse(text);
      } catch {
        this.report(n, "not valid JSON; each line must be one JSON object");
        return;
      }
      const r = rec as { text?: unknown; label?: unknown };
      if (typeof rec !== "object" || rec === null || typeof r.text !== "string") {
        this.report(n, 'missing a string "text" field');
        return;
      }
      content = r.text;
      if (this.opts.purpose === "probe") {
        if (typeof r.label !== "string" && typeof r.label !== "number") {
          this.report(n, 'a probe set needs a "label" (string or number) on every record');
          return;
        }
        this.labels.set(String(r.label), (this.labels.get(String(r.label)) ?? 0) + 1);
      }
    }
    const key = lineKey(raw);
    if (this.seen.has(key)) {
      stats.duplicates++;
      return;
    }
    if (this.seen.size < MAX_TRACKED_LINES) this.seen.add(key);
    else stats.duplicates_exact = false;
    stats.records++;
    this.totalLength += content.length;
    stats.max_length = Math.max(stats.max_length, content.length);
  }

  finish(sha256: string, bytes: number, lines: number): CheckResult {
    const stats = this.stats;
    // A read failure leaves `lines` at 0: the last line seen stands then.
    stats.lines = Math.max(stats.lines, lines);
    stats.bytes = bytes;
    stats.mean_length = stats.records > 0 ? Math.round((this.totalLength / stats.records) * 10) / 10 : 0;
    if (this.opts.purpose === "probe") {
      stats.labels = Object.fromEntries([...this.labels.entries()].sort(([a], [b]) => a.localeCompare(b)));
      if (this.errors.length === 0 && this.labels.size < 2)
        this.report(undefined, `a probe set needs at least 2 labels; found ${this.labels.size}`);
    }
    if (this.errors.length === 0 && stats.records === 0)
      this.report(undefined, "no usable record: the file is empty or every line is blank");
    return { sha256, stats, errors: this.errors };
  }
}
