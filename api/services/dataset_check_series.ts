// Checks a time-series dataset (decision 0005) with the same rules as the trainer's reader
// (gpu-trainer/selfsup_trainer/series/data.py): JSONL `{"values": number[] | number[][], "label"?}`
// or CSV (header row required, optional `label` column, one univariate series per row, trailing
// empty cells make a shorter series), optionally gzipped. Errors name the line and the column.
import {
  type CheckResult,
  type DatasetIssue,
  Issues,
  type LineCheck,
  MAX_LINE_BYTES,
  runLineCheck,
  type SavedCheck,
} from "./dataset_check";

export const SERIES_FORMATS = ["jsonl", "jsonl.gz", "csv", "csv.gz"] as const;
export type SeriesFormat = (typeof SERIES_FORMATS)[number];
/** Distinct labels a probe set may have. */
export const MAX_SERIES_CLASSES = 10_000;
/** Channels a series may have (the manifest's cap; the trainer's reader enforces the same). */
export const MAX_SERIES_CHANNELS = 256;
/** The largest float32; series are trained and served as float32, so larger values become inf. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Why `v` cannot be a series value (non-finite, or beyond float32), or null when it can.
 * @param shown how the value is named in the message (the CSV cell as written; default `String(v)`).
 */
export function seriesValueProblem(v: number, shown = String(v)): string | null {
  if (!Number.isFinite(v)) return `${shown} is not finite (overflows float64); use finite numbers`;
  if (Math.abs(v) > FLOAT32_MAX) {
    return `${shown} is beyond float32 (|x| <= 3.4028235e38) and would become infinite; rescale the series (e.g. change units)`;
  }
  return null;
}

export type SeriesStats = {
  records: number;
  bytes: number;
  decompressed_bytes: number;
  lines: number;
  empty: number;
  channels: number;
  min_length: number;
  max_length: number;
  mean_length: number;
  points: number;
  labels?: Record<string, number>;
};

/** One parsed series (`values[channel][t]`) with its label, or the issue that stops it. */
export type ParsedSeries = { values: number[][]; label?: string } | DatasetIssue;

// Python's float() grammar minus underscores, so the trainer and this check agree on what a number is.
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

function cellNumber(cell: string): number | string {
  if (NUMBER.test(cell)) {
    const v = Number(cell);
    return seriesValueProblem(v, `\`${cell.slice(0, 40)}\``) ?? v;
  }
  if (NON_FINITE.test(cell)) {
    return `\`${cell}\` is not finite; remove NaN/Infinity (gaps inside a series are not supported, only a shorter series)`;
  }
  return `\`${cell.slice(0, 40)}\` is not a number`;
}

/** Splits one CSV line: commas, double-quoted fields with "" escapes (no newlines inside quotes). */
export function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** One JSONL line (`n` is its line number, for the issue). */
export function parseSeriesJsonl(text: string, n: number): ParsedSeries {
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return { line: n, message: "not valid JSON (NaN and Infinity are not JSON either); write one object per line" };
  }
  const r = rec as { values?: unknown; label?: unknown };
  if (typeof rec !== "object" || rec === null || !Array.isArray(r.values) || r.values.length === 0) {
    return {
      line: n,
      column: "values",
      message: 'needs "values": a non-empty number[] or number[][] (channels × time)',
    };
  }
  const rows = (Array.isArray(r.values[0]) ? r.values : [r.values]) as unknown[];
  if (rows.length > MAX_SERIES_CHANNELS) {
    return {
      line: n,
      column: "values",
      message: `${rows.length} channels; at most ${MAX_SERIES_CHANNELS} are supported (drop or merge channels)`,
    };
  }
  const width = Array.isArray(rows[0]) ? rows[0].length : 0;
  if (width === 0) return { line: n, column: "values[0]", message: "channel 0 is empty; a series needs points" };
  for (let c = 0; c < rows.length; c++) {
    const row = rows[c];
    if (!Array.isArray(row) || row.length !== width) {
      return {
        line: n,
        column: `values[${c}]`,
        message: `channel ${c} has ${Array.isArray(row) ? `${row.length} points` : "no array"} but channel 0 has ${width}; channels of one series must have the same length`,
      };
    }
    for (let t = 0; t < width; t++) {
      const v = row[t];
      const problem =
        typeof v === "number"
          ? seriesValueProblem(v)
          : `${JSON.stringify(v)?.slice(0, 40)} is not a number; use numbers only (no null: gaps are not supported inside a series)`;
      if (problem !== null) {
        return { line: n, column: rows.length > 1 ? `values[${c}][${t}]` : `values[${t}]`, message: problem };
      }
    }
  }
  const values = rows as number[][];
  if (r.label === undefined || r.label === null) return { values };
  if (typeof r.label !== "string" && typeof r.label !== "number") {
    return { line: n, column: "label", message: '"label" must be a string or a number' };
  }
  return { values, label: String(r.label) };
}

export type CsvHeader = { names: string[]; label: number | null };

export function parseCsvHeader(text: string): CsvHeader | DatasetIssue {
  const names = splitCsv(text).map((s) => s.trim());
  const fractional = names.find((s) => NUMBER.test(s) && !/^[+-]?\d+$/.test(s));
  if (fractional !== undefined) {
    return {
      line: 1,
      message: `looks like data (\`${fractional}\`), not a header; add a header row (e.g. t0,t1,...,label)`,
    };
  }
  const lower = names.map((s) => s.toLowerCase());
  const label = lower.indexOf("label");
  if (names.length - (label >= 0 ? 1 : 0) === 0) {
    return { line: 1, message: "the header has no time-step column; name one column per time step (t0,t1,...)" };
  }
  return { names, label: label >= 0 ? label : null };
}

/** One CSV data row; null for a blank row. */
export function parseCsvRow(text: string, n: number, h: CsvHeader): ParsedSeries | null {
  const row = splitCsv(text);
  if (row.every((c) => c.trim() === "")) return null;
  if (row.length > h.names.length) {
    return {
      line: n,
      message: `${row.length} cells but the header has ${h.names.length} columns; add header columns or remove the extra cells`,
    };
  }
  const steps: number[] = [];
  for (let i = 0; i < h.names.length; i++) if (i !== h.label) steps.push(i);
  let length = steps.length;
  while (length > 0 && (row[steps[length - 1] as number] ?? "").trim() === "") length--;
  if (length === 0) return { line: n, message: "the series is empty; give it at least one value" };
  const values = new Array<number>(length);
  for (let t = 0; t < length; t++) {
    const col = steps[t] as number;
    const cell = (row[col] ?? "").trim();
    const column = h.names[col] as string;
    if (cell === "") {
      return {
        line: n,
        column,
        message: "empty cell inside the series; only trailing cells may be empty (fill the gap, e.g. by interpolation)",
      };
    }
    const v = cellNumber(cell);
    if (typeof v === "string") return { line: n, column, message: v };
    values[t] = v;
  }
  const label = h.label !== null ? (row[h.label] ?? "").trim() : "";
  return { values: [values], ...(label ? { label } : {}) };
}

/**
 * A stateful parser for the lines of one series file, in order: `"header"` for a CSV's first line,
 * `"blank"` for empty lines, `"skip"` for rows after a bad header (already reported), else the
 * series or the issue that stops it. Shared by the check and by probes reading a set. Its only
 * state is the CSV header (`header`), which a resumed check passes back in.
 */
export class SeriesLineParser {
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  private readonly csv: boolean;
  constructor(
    format: SeriesFormat,
    public header: CsvHeader | null = null,
  ) {
    this.csv = format.startsWith("csv");
  }

  parse(raw: Uint8Array, n: number): ParsedSeries | "header" | "blank" | "skip" {
    let text: string;
    try {
      text = this.decoder.decode(raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw);
    } catch {
      return { line: n, message: "not valid UTF-8; re-encode the file as UTF-8" };
    }
    if (n === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (this.csv && n === 1) {
      const h = parseCsvHeader(text);
      if ("message" in h) return h;
      this.header = h;
      return "header";
    }
    if (text.trim() === "") return "blank";
    if (this.csv && !this.header) return "skip";
    const r = this.header ? parseCsvRow(text, n, this.header) : parseSeriesJsonl(text, n);
    return r ?? "blank";
  }
}

/** `SeriesLineParser.parse` as a plain function. */
export function seriesLineParser(
  format: SeriesFormat,
): (raw: Uint8Array, n: number) => ReturnType<SeriesLineParser["parse"]> {
  const p = new SeriesLineParser(format);
  return (raw, n) => p.parse(raw, n);
}

export function checkSeriesDataset(
  body: ReadableStream<Uint8Array>,
  opts: { format: SeriesFormat; purpose: "pretrain" | "probe" },
): Promise<CheckResult<SeriesStats>> {
  return runLineCheck(new SeriesCheck(opts), body, opts.format);
}

type SeriesSaved = {
  kept: DatasetIssue[];
  dropped: number;
  stats: SeriesStats;
  labels: Record<string, number>;
  firstLine: number;
  header: CsvHeader | null;
};

/** The time-series check (records, channels, labels, lengths) as a LineCheck. */
export class SeriesCheck implements LineCheck<SeriesStats> {
  private readonly issues = new Issues();
  private readonly stats: SeriesStats;
  private readonly labels: Map<string, number>;
  private firstLine: number;
  private readonly csv: boolean;
  private readonly parser: SeriesLineParser;

  constructor(
    private readonly opts: { format: SeriesFormat; purpose: "pretrain" | "probe" },
    saved?: SavedCheck,
  ) {
    const j = saved?.json as SeriesSaved | undefined;
    this.issues.kept.push(...(j?.kept ?? []));
    this.issues.dropped = j?.dropped ?? 0;
    this.stats = j?.stats ?? {
      records: 0,
      bytes: 0,
      decompressed_bytes: 0,
      lines: 0,
      empty: 0,
      channels: 0,
      min_length: 0,
      max_length: 0,
      mean_length: 0,
      points: 0,
    };
    this.labels = new Map(Object.entries(j?.labels ?? {}));
    this.firstLine = j?.firstLine ?? 0;
    this.csv = opts.format.startsWith("csv");
    this.parser = new SeriesLineParser(opts.format, j?.header ?? null);
  }

  async save(): Promise<SavedCheck> {
    const json: SeriesSaved = {
      kept: this.issues.kept,
      dropped: this.issues.dropped,
      stats: this.stats,
      labels: Object.fromEntries(this.labels),
      firstLine: this.firstLine,
      header: this.parser.header,
    };
    return { json };
  }

  addDecompressed(n: number) {
    this.stats.decompressed_bytes += n;
  }

  readFailed(message: string) {
    this.issues.add({ message });
  }

  onOverlong(n: number) {
    this.stats.lines = n;
    this.issues.add({ line: n, message: `longer than ${MAX_LINE_BYTES} bytes; put one series per line` });
  }

  onLine(raw: Uint8Array, n: number) {
    const { stats, issues, labels, opts } = this;
    stats.lines = n;
    const r = this.parser.parse(raw, n);
    if (r === "header" || r === "skip") return;
    if (r === "blank") {
      stats.empty++;
      return;
    }
    if ("message" in r) {
      issues.add(r);
      return;
    }
    const channels = r.values.length;
    const length = (r.values[0] as number[]).length;
    if (stats.records === 0) {
      stats.channels = channels;
      this.firstLine = n;
    } else if (channels !== stats.channels) {
      issues.add({
        line: n,
        column: "values",
        message: `${channels} channel(s) but the first series (line ${this.firstLine}) has ${stats.channels}; every series needs the same channel count`,
      });
      return;
    }
    if (opts.purpose === "probe") {
      if (r.label === undefined) {
        issues.add({
          line: n,
          column: "label",
          message: `a probe set needs a label on every series (${this.csv ? "a `label` column" : 'a "label" field'})`,
        });
        return;
      }
      if (!labels.has(r.label) && labels.size >= MAX_SERIES_CLASSES) {
        issues.add({ line: n, column: "label", message: `more than ${MAX_SERIES_CLASSES} distinct labels` });
        return;
      }
      labels.set(r.label, (labels.get(r.label) ?? 0) + 1);
    }
    stats.min_length = stats.records === 0 ? length : Math.min(stats.min_length, length);
    stats.max_length = Math.max(stats.max_length, length);
    stats.records++;
    stats.points += length * channels;
  }

  finish(sha256: string, bytes: number): CheckResult<SeriesStats> {
    const { stats, issues, labels, opts } = this;
    stats.bytes = bytes;
    stats.mean_length = stats.records > 0 ? Math.round((stats.points / stats.channels / stats.records) * 10) / 10 : 0;
    if (opts.purpose === "probe") {
      stats.labels = Object.fromEntries([...labels.entries()].sort(([a], [b]) => a.localeCompare(b)));
      if (issues.count === 0 && labels.size < 2) {
        issues.add({ message: `a probe set needs at least 2 labels; found ${labels.size}` });
      }
    }
    if (issues.count === 0 && stats.records === 0) {
      issues.add({
        message: this.csv
          ? "no series: write a header row, then one series per row"
          : "no series: write one JSON object per line",
      });
    }
    return { sha256, stats, errors: issues.list() };
  }
}
