// Checks a dataset object before anything may train on it: SHA-256 of the stored bytes, gzip
// integrity, strict UTF-8, the record format, and stats. It streams with bounded memory (lines are
// capped at MAX_LINE_BYTES, duplicate tracking at MAX_TRACKED_LINES). Lines are split on the byte
// 0x0A, never part of a multi-byte UTF-8 sequence, which lets errors name exact line numbers.

export const TEXT_FORMATS = ["txt", "jsonl", "txt.gz", "jsonl.gz"] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

export type DatasetIssue = { line?: number; message: string };
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
export type CheckResult = { sha256: string; stats: DatasetStats; errors: DatasetIssue[] };

const MAX_REPORTED = 20;
/** A record longer than this is an error (a file with no newlines would otherwise fill the isolate). */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Distinct lines remembered for duplicate counting; past it, duplicates are counted among these only. */
const MAX_TRACKED_LINES = 500_000;

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
  const digest = new crypto.DigestStream("SHA-256");
  const [forHash, forParse] = body.tee();
  const hashing = forHash.pipeTo(digest);

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

  const onLine = (raw: Uint8Array) => {
    stats.lines++;
    const n = stats.lines;
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

  let source: ReadableStream<Uint8Array> = forParse.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        stats.bytes += chunk.byteLength;
        ctl.enqueue(chunk);
      },
    }),
  );
  if (opts.format.endsWith(".gz")) source = source.pipeThrough(new DecompressionStream("gzip"));

  let carry = new Uint8Array(0);
  let overlong = false; // inside a line already reported as too long: skip to its end
  try {
    for await (const chunk of source) {
      stats.decompressed_bytes += chunk.byteLength;
      let start = 0;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== 0x0a) continue;
        const piece = chunk.subarray(start, i);
        if (overlong) {
          overlong = false;
          stats.lines++;
        } else if (carry.length > 0) {
          const joined = new Uint8Array(carry.length + piece.length);
          joined.set(carry);
          joined.set(piece, carry.length);
          onLine(joined);
          carry = new Uint8Array(0);
        } else onLine(piece);
        start = i + 1;
      }
      if (start < chunk.length && !overlong) {
        const rest = chunk.subarray(start);
        if (carry.length + rest.length > MAX_LINE_BYTES) {
          report(stats.lines + 1, `longer than ${MAX_LINE_BYTES} bytes; put one record per line`);
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
    if (overlong) stats.lines++;
    else if (carry.length > 0) onLine(carry);
  } catch (e) {
    report(
      undefined,
      opts.format.endsWith(".gz")
        ? `gzip stream is corrupt or truncated (${(e as Error).message})`
        : `could not read the file (${(e as Error).message})`,
    );
  }
  await hashing;
  const sha256 = [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");

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
