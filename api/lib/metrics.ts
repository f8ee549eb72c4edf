// Prometheus metrics, per isolate: every Workers isolate keeps its own counters, so a scrape sees
// the isolate that served it (its `isolate` label), not the whole deployment.

type Labels = Record<string, string>;

const key = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",");

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
  ) {}
  abstract lines(common: string): string[];
}

export class Counter extends Metric {
  private readonly values = new Map<string, number>();
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1) {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}) {
    return this.values.get(key(labels)) ?? 0;
  }
  lines(common: string) {
    return [...this.values].map(([k, v]) => `${this.name}{${join(common, k)}} ${v}`);
  }
}

export class Gauge extends Metric {
  private readonly values = new Map<string, () => number>();
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }
  set(value: number, labels: Labels = {}) {
    this.values.set(key(labels), () => value);
  }
  /** A gauge read at scrape time. */
  collect(read: () => number, labels: Labels = {}) {
    this.values.set(key(labels), read);
  }
  lines(common: string) {
    return [...this.values].map(([k, read]) => `${this.name}{${join(common, k)}} ${read()}`);
  }
}

export class Histogram extends Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    readonly buckets: number[],
  ) {
    super(name, help, "histogram");
  }
  observe(value: number, labels: Labels = {}) {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    }
    s.sum += value;
    s.count++;
  }
  lines(common: string) {
    const out: string[] = [];
    for (const [k, s] of this.series) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket{${join(common, k, `le="${b}"`)}} ${s.counts[i]}`);
      });
      out.push(`${this.name}_bucket{${join(common, k, 'le="+Inf"')}} ${s.count}`);
      out.push(`${this.name}_sum{${join(common, k)}} ${s.sum}`);
      out.push(`${this.name}_count{${join(common, k)}} ${s.count}`);
    }
    return out;
  }
}

const join = (...parts: string[]) => parts.filter(Boolean).join(",");

const ISOLATE = Math.random().toString(36).slice(2, 10);
const STARTED = Date.now();
const registry: Metric[] = [];
const add = <T extends Metric>(m: T) => {
  registry.push(m);
  return m;
};

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const metrics = {
  requests: add(new Counter("selfsup_http_requests_total", "HTTP requests by method, route and status.")),
  errors: add(
    new Counter("selfsup_http_errors_total", "HTTP responses with status >= 400 by method, route and status."),
  ),
  latency: add(new Histogram("selfsup_http_request_duration_seconds", "Request latency by route.", SECONDS)),
  tokens: add(new Counter("selfsup_embed_tokens_total", "Tokens embedded (padding excluded), by model variant.")),
  inputs: add(new Counter("selfsup_embed_inputs_total", "Inputs embedded, by model variant.")),
  batchRows: add(
    new Histogram("selfsup_embed_microbatch_rows", "Rows per ORT run (micro-batch).", [1, 2, 4, 8, 16, 32, 64]),
  ),
  batchTokens: add(
    new Histogram(
      "selfsup_embed_microbatch_tokens",
      "Padded tokens (rows × width) per ORT run.",
      [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
    ),
  ),
  runSeconds: add(new Histogram("selfsup_embed_microbatch_seconds", "Time per ORT run.", SECONDS)),
  cacheHits: add(new Counter("selfsup_session_cache_hits_total", "Encoder sessions found in the isolate cache.")),
  cacheMisses: add(new Counter("selfsup_session_cache_misses_total", "Encoder sessions loaded (R2 fetch + create).")),
  cacheEvictions: add(new Counter("selfsup_session_cache_evictions_total", "Encoder sessions evicted (LRU, budget).")),
  cacheBytes: add(new Gauge("selfsup_session_cache_bytes", "Model bytes held by cached sessions.")),
  cacheSessions: add(new Gauge("selfsup_session_cache_sessions", "Cached encoder sessions.")),
  loadSeconds: add(
    new Histogram("selfsup_model_load_seconds", "Model load time: R2 fetch + tokenizer + ORT session create.", SECONDS),
  ),
  ortInitSeconds: add(new Gauge("selfsup_ort_init_seconds", "One-time ORT WASM initialisation in this isolate.")),
  wasmBytes: add(
    new Gauge("selfsup_wasm_memory_bytes", "Current WASM linear memory: ORT's heap plus every kernel instance's."),
  ),
  kernelBytes: add(
    new Gauge("selfsup_kernel_memory_bytes", "WASM linear memory of the int8 kernel instances (decision 0011)."),
  ),
  wasmPeakBytes: add(
    new Gauge("selfsup_wasm_memory_peak_bytes", "Largest WASM memory seen (ORT's heap never shrinks)."),
  ),
  uptime: add(new Gauge("selfsup_isolate_uptime_seconds", "Seconds since this isolate loaded the module.")),
};
metrics.uptime.collect(() => (Date.now() - STARTED) / 1000);

/** Prometheus text exposition (version 0.0.4) of this isolate's metrics. */
export function renderMetrics(): string {
  const common = `isolate="${ISOLATE}"`;
  const out: string[] = [];
  for (const m of registry) {
    out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.lines(common));
  }
  return `${out.join("\n")}\n`;
}
