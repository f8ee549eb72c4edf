// Human output for the CLI: tables, a progress bar, a confusion matrix. Everything goes to stderr
// except results, so `--json` output stays clean on stdout.

export function table(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return "(none)";
  const cols = columns ?? Object.keys(rows[0] as object);
  const cell = (v: unknown) =>
    v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [
    line(cols),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(cols.map((c) => cell(r[c])))),
  ].join("\n");
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
      : `${s}s`;
}

/** A one-line progress bar redrawn in place on a TTY, printed every ~10% otherwise (CI logs). */
export class ProgressBar {
  private lastPrinted = -1;
  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(fraction: number, suffix = "") {
    const f = Math.max(0, Math.min(1, fraction));
    const width = 30;
    const filled = Math.round(f * width);
    const text = `${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(f * 100).toFixed(0).padStart(3)}% ${suffix}`;
    if (this.stream.isTTY) this.stream.write(`\r${text}\x1b[K`);
    else if (Math.floor(f * 10) !== this.lastPrinted) {
      this.lastPrinted = Math.floor(f * 10);
      this.stream.write(`${text}\n`);
    }
  }

  done(suffix = "") {
    this.update(1, suffix);
    if (this.stream.isTTY) this.stream.write("\n");
  }
}

export function confusionMatrix(labels: string[], matrix: number[][]): string {
  const w = Math.max(6, ...labels.map((l) => l.length), ...matrix.flat().map((n) => String(n).length));
  const head = `${"true\\pred".padEnd(w)}  ${labels.map((l) => l.padStart(w)).join(" ")}`;
  return [
    head,
    ...labels.map((l, i) => `${l.padEnd(w)}  ${(matrix[i] ?? []).map((n) => String(n).padStart(w)).join(" ")}`),
  ].join("\n");
}
