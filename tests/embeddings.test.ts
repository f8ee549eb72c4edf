// /v1/embeddings, /v1/tokenize, /v1/models/{ref}/info and /metrics against the fixture encoder,
// with onnxruntime-web really running inside workerd. Kept in one file: each test file that loads
// the 14 MB ORT WebAssembly module pays ~10-15 s for it.
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_INPUTS } from "../api/services/encoder/inputs";
import { quantizesActivations, setSessionCacheBudget } from "../api/services/encoder/sessions";
import { TextTokenizer } from "../api/services/encoder/tokenizer";
import {
  cosine,
  decodeBase64Floats,
  fixtureBytes,
  fixtureJson,
  fixtureManifest,
  fixtureNames,
  fixtureReference,
  registerFixture,
  withoutKernel,
} from "./embeddings_fixture";
import { addKey, api, expectProblem, newTenant } from "./helpers";

type Embedding = { object: string; index: number; embedding: number[] | string };
type EmbeddingsBody = {
  object: string;
  data: Embedding[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
};

let key = "";
let tenantId = "";
const MODEL = "tiny";
const MATRYOSHKA = [32, 64];

async function embed(body: Record<string, unknown>, k = key) {
  return api("/v1/embeddings", { method: "POST", key: k, json: { model: MODEL, ...body } });
}

async function vectors(body: Record<string, unknown>): Promise<number[][]> {
  const res = await embed(body);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${text}`);
  return (JSON.parse(text) as EmbeddingsBody).data.map((d) => d.embedding as number[]);
}

async function scrape(): Promise<string> {
  const res = await api("/metrics", { key });
  expect(res.status).toBe(200);
  return res.text();
}

const metricValue = (text: string, name: string, label = "") => {
  const line = text
    .split("\n")
    .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(label));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : Number.NaN;
};

const TEXTS = [
  "Call me Ishmael.",
  "Some years ago—never mind how long precisely—having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.",
  "Whale!",
  "It is a way I have of driving off the spleen and regulating the circulation.",
  "There now is your insular city of the Manhattoes, belted round by wharves as Indian isles by coral reefs.",
];

beforeAll(async () => {
  const t = await newTenant(["admin"]);
  key = t.secret;
  tenantId = t.tenantId;
  // The fixture as if trained with Matryoshka dims (the manifest is data; the API only reads it)…
  await registerFixture(key, MODEL, (m) => ({ ...m, matryoshka_dims: MATRYOSHKA }));
  // …and as exported: no Matryoshka dims.
  await registerFixture(key, "tiny-plain", (m) => ({ ...m, matryoshka_dims: [] }));
  // …and without its int8 kernel, so int8 runs the quantized ONNX graph in ORT-web.
  await registerFixture(key, "tiny-ort", withoutKernel);
}, 60_000);

describe("ORT-web in workerd: parity with native onnxruntime", () => {
  it("fp32, int8 (ORT-web) and the int8 kernel match Python's reference_embeddings.json", async () => {
    const ref = fixtureReference();
    // The API rejects empty strings; a reference case for "" goes in as its token ids ([CLS] [SEP]).
    const run = async (precision: string, model = MODEL) => {
      const out: number[][] = [];
      for (const [i, text] of ref.texts.entries()) {
        const input = text === "" ? (ref.ids?.[i] ?? [2, 3]) : text;
        out.push((await vectors({ input, precision, model }))[0] as number[]);
      }
      return out;
    };
    const minCos = (a: number[][], b: number[][]) => Math.min(...a.map((v, i) => cosine(v, b[i] as number[])));
    const fp32 = await run("fp32");
    const ort8 = await run("int8", "tiny-ort");
    const kernel = await run("int8");
    const refKernel = ref.int8Kernel;
    expect(refKernel, "the fixture's reference_embeddings.json has int8_kernel vectors").toBeDefined();
    const c = {
      fp32: minCos(fp32, ref.fp32),
      ort8: minCos(ort8, ref.int8),
      kernel: minCos(kernel, refKernel as number[][]),
      ort8VsFp32: minCos(ort8, ref.fp32),
      kernelVsFp32: minCos(kernel, ref.fp32),
    };
    console.log(
      `parity over ${ref.texts.length} texts (min cosine): fp32 vs python fp32 ${c.fp32.toFixed(9)}, ` +
        `ORT int8 vs python int8 ${c.ort8.toFixed(9)}, kernel vs numpy kernel ${c.kernel.toFixed(9)}, ` +
        `ORT int8 vs fp32 ${c.ort8VsFp32.toFixed(5)}, kernel vs fp32 ${c.kernelVsFp32.toFixed(5)}`,
    );
    expect(c.fp32).toBeGreaterThanOrEqual(0.99999);
    expect(c.ort8).toBeGreaterThanOrEqual(0.999);
    expect(c.kernel).toBeGreaterThanOrEqual(0.9999);
    // The export's gate for both int8 forms (0.97 min over its probe texts); the tiny model clears 0.99.
    expect(c.ort8VsFp32).toBeGreaterThanOrEqual(0.99);
    expect(c.kernelVsFp32).toBeGreaterThanOrEqual(0.99);
  });

  it("int8 is the default precision when the version has it", async () => {
    const ref = fixtureReference();
    const auto = await vectors({ input: ref.texts[0] as string });
    const int8 = await vectors({ input: ref.texts[0] as string, precision: "int8" });
    expect(auto[0]).toEqual(int8[0]);
  });

  it("@huggingface/tokenizers reproduces the Python tokenizer's ids (tokenizer_cases.json)", () => {
    const manifest = fixtureManifest();
    const tokenizer = new TextTokenizer(fixtureJson("tokenizer.json"), manifest.max_tokens ?? 512);
    const cases = fixtureJson<{ text: string; ids: number[] }[]>("tokenizer_cases.json");
    expect(cases.length).toBeGreaterThan(0);
    const mismatches = cases.filter((c) => JSON.stringify(tokenizer.encode(c.text).ids) !== JSON.stringify(c.ids));
    expect(mismatches.map((c) => c.text)).toEqual([]);
  });

  it("the fixture has everything the parity tests need", () => {
    for (const f of [
      "manifest.json",
      "tokenizer.json",
      "reference_embeddings.json",
      "tokenizer_cases.json",
      "model.int8.kernel",
    ]) {
      expect(fixtureNames()).toContain(f);
    }
    expect(fixtureBytes("model.int8.onnx").byteLength).toBeGreaterThan(0);
  });

  it("dynamic int8 graphs are recognised (they run one input per ORT run)", () => {
    expect(quantizesActivations(fixtureBytes("model.int8.onnx"))).toBe(true);
    expect(quantizesActivations(fixtureBytes("model.onnx"))).toBe(false);
  });
});

describe("POST /v1/embeddings: OpenAI's contract", () => {
  it("returns a list of embeddings in input order with usage and the resolved model", async () => {
    const res = await embed({ input: TEXTS, user: "user-1234" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    const body = await res.json<EmbeddingsBody>();
    expect(body.object).toBe("list");
    expect(body.model).toBe(`${MODEL}@1`);
    expect(body.data.map((d) => d.index)).toEqual(TEXTS.map((_, i) => i));
    const dims = fixtureManifest().dims;
    for (const d of body.data) {
      expect(d.object).toBe("embedding");
      expect(d.embedding).toHaveLength(dims);
      const v = d.embedding as number[];
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
    expect(body.usage.prompt_tokens).toBeGreaterThan(TEXTS.length * 2);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens);
    expect(Object.keys(body).sort()).toEqual(["data", "model", "object", "usage"]);
  });

  it("a single string gives one embedding; usage counts its tokens, special tokens included", async () => {
    const tok = await api("/v1/tokenize", { method: "POST", key, json: { model: MODEL, inputs: TEXTS[0] } });
    const ids = (await tok.json<{ data: { ids: number[] }[] }>()).data[0]?.ids ?? [];
    const body = await (await embed({ input: TEXTS[0] })).json<EmbeddingsBody>();
    expect(body.data).toHaveLength(1);
    expect(body.usage.prompt_tokens).toBe(ids.length);
  });

  it("token-id input (int[] and int[][]) equals the text it came from", async () => {
    const tok = await api("/v1/tokenize", { method: "POST", key, json: { model: MODEL, inputs: TEXTS.slice(0, 2) } });
    const ids = (await tok.json<{ data: { ids: number[] }[] }>()).data.map((d) => d.ids);
    const fromText = await vectors({ input: TEXTS.slice(0, 2) });
    const one = await vectors({ input: ids[0] });
    const many = await vectors({ input: ids });
    expect(cosine(one[0] as number[], fromText[0] as number[])).toBeGreaterThanOrEqual(0.99999);
    expect(many[1]).toEqual(fromText[1]);
  });

  it("encoding_format base64 is little-endian float32 of the same vectors", async () => {
    const floats = await vectors({ input: TEXTS, encoding_format: "float" });
    const res = await embed({ input: TEXTS, encoding_format: "base64" });
    const body = await res.json<EmbeddingsBody>();
    body.data.forEach((d, i) => {
      expect(typeof d.embedding).toBe("string");
      const decoded = decodeBase64Floats(d.embedding as string);
      expect(Array.from(decoded)).toEqual((floats[i] as number[]).map((x) => Math.fround(x)));
    });
  });

  it("model may be name, name@version or name@alias", async () => {
    for (const model of [MODEL, `${MODEL}@1`, `${MODEL}@latest`]) {
      const res = await api("/v1/embeddings", { method: "POST", key, json: { model, input: "hi" } });
      expect(res.status).toBe(200);
      expect((await res.json<EmbeddingsBody>()).model).toBe(`${MODEL}@1`);
    }
  });

  it("dimensions truncates and renormalises for a Matryoshka model", async () => {
    const d = MATRYOSHKA[0] as number;
    const full = (await vectors({ input: TEXTS[1] }))[0] as number[];
    const short = (await vectors({ input: TEXTS[1], dimensions: d }))[0] as number[];
    expect(short).toHaveLength(d);
    expect(Math.hypot(...short)).toBeCloseTo(1, 5);
    expect(cosine(short, full.slice(0, d))).toBeGreaterThanOrEqual(0.99999);
  });
});

describe("POST /v1/embeddings: bad requests are problems naming the field", () => {
  const cases: [string, Record<string, unknown>, number, string][] = [
    ["empty string", { input: "" }, 400, "input"],
    ["empty array", { input: [] }, 400, "input"],
    ["empty string inside an array", { input: ["ok", ""] }, 400, "input[1]"],
    ["empty token array inside an array", { input: [[5, 6], []] }, 400, "input[1]"],
    ["mixed types", { input: ["a", 3] }, 400, "input"],
    ["a number", { input: 3 }, 400, "input"],
    ["missing input", {}, 400, "input"],
    ["2049 inputs", { input: Array.from({ length: MAX_INPUTS + 1 }, () => "x") }, 400, "input"],
    ["token id outside the vocabulary", { input: [[5, 10_000_000]] }, 400, "input[0][1]"],
    ["negative token id", { input: [5, -1] }, 400, "input[1]"],
    ["unknown encoding_format", { input: "x", encoding_format: "int8" }, 400, "encoding_format"],
    ["dimensions not among the trained ones", { input: "x", dimensions: 3 }, 400, "dimensions"],
    ["dimensions zero", { input: "x", dimensions: 0 }, 400, "dimensions"],
    ["unknown precision", { input: "x", precision: "fp16" }, 400, "precision"],
    ["truncate not a boolean", { input: "x", truncate: "no" }, 400, "truncate"],
  ];
  for (const [name, body, status, field] of cases) {
    it(`${status} for ${name} (names ${field})`, async () => {
      const p = await expectProblem(await embed(body), status);
      expect(p.errors?.map((e) => e.path) ?? [p.detail]).toContainEqual(expect.stringContaining(field));
    });
  }

  it("400 for dimensions on a model not trained for Matryoshka, saying so", async () => {
    const res = await api("/v1/embeddings", {
      method: "POST",
      key,
      json: { model: "tiny-plain", input: "x", dimensions: 32 },
    });
    const p = await expectProblem(res, 400);
    expect(p.detail).toContain("not trained");
    expect(p.errors?.[0]?.path).toBe("dimensions");
  });

  it("413 naming the input when truncate is false and an input exceeds max_tokens", async () => {
    const max = fixtureManifest().max_tokens ?? 512;
    const long = "whale ".repeat(max + 10);
    const p = await expectProblem(await embed({ input: ["short", long], truncate: false }), 413);
    expect(p.errors?.[0]?.path).toBe("input[1]");
    expect(p.detail).toContain(String(max));
    const ids = await expectProblem(
      await embed({ input: [Array.from({ length: max + 1 }, () => 5)], truncate: false }),
      413,
    );
    expect(ids.errors?.[0]?.path).toBe("input[0]");
    // With the default (truncate: true) the same input is cut to max_tokens.
    const ok = await (await embed({ input: long })).json<EmbeddingsBody>();
    expect(ok.usage.prompt_tokens).toBe(max);
  });

  it("404 naming an unknown model, version or alias", async () => {
    for (const model of ["nope", `${MODEL}@9`, `${MODEL}@staging`, "Not A Ref"]) {
      const p = await expectProblem(await embed({ model, input: "x" }), 404);
      expect(p.detail).toContain(model.split("@")[0] as string);
    }
  });

  it("401 without a key, 403 without the embed scope, and another tenant's model is a 404", async () => {
    await expectProblem(await api("/v1/embeddings", { method: "POST", json: { model: MODEL, input: "x" } }), 401);
    const probeOnly = await addKey(tenantId, ["probe"]);
    await expectProblem(await embed({ input: "x" }, probeOnly.secret), 403);
    const embedOnly = await addKey(tenantId, ["embed"]);
    expect((await embed({ input: "x" }, embedOnly.secret)).status).toBe(200);
    const other = await newTenant(["embed"]);
    await expectProblem(await embed({ input: "x" }, other.secret), 404);
  });

  it("400 for malformed JSON", async () => {
    const res = await api("/v1/embeddings", {
      method: "POST",
      key,
      headers: { "content-type": "application/json" },
      body: "{nope",
    });
    await expectProblem(res, 400);
  });
});

describe("micro-batching", () => {
  it("an input's embedding does not depend on what it is batched with (fp32, int8 ORT, int8 kernel)", async () => {
    for (const [precision, model] of [
      ["fp32", MODEL],
      ["int8", "tiny-ort"],
      ["int8", MODEL],
    ] as const) {
      const together = await vectors({ input: TEXTS, precision, model });
      const reversed = await vectors({ input: [...TEXTS].reverse(), precision, model });
      let worst = 1;
      for (let i = 0; i < TEXTS.length; i++) {
        const alone = (await vectors({ input: TEXTS[i], precision, model }))[0] as number[];
        worst = Math.min(
          worst,
          cosine(alone, together[i] as number[]),
          cosine(alone, reversed[TEXTS.length - 1 - i] as number[]),
        );
      }
      console.log(`batch invariance ${model} ${precision}: min cosine alone vs batched ${worst.toFixed(8)}`);
      expect(worst).toBeGreaterThanOrEqual(0.99999);
    }
  });

  // int8 twice: on the kernel (MODEL) and on ORT-web's dynamic-int8 graph (tiny-ort).
  for (const [precision, model] of [
    ["int8", MODEL],
    ["int8", "tiny-ort"],
    ["fp32", MODEL],
  ] as const) {
    it(`a ${MAX_INPUTS}-input request succeeds (${model} ${precision}) and WASM memory stays within the 96 MiB budget`, async () => {
      const corpus = TEXTS.flatMap((t) => t.split(/(?<=[.!?])\s+|,\s*/));
      const input = Array.from({ length: MAX_INPUTS }, (_, i) => `${corpus[i % corpus.length]} (${i})`);
      input[7] = "whale ".repeat(400); // one input past max_tokens, truncated
      const series = `precision="${precision}"`;
      const before = metricValue(await scrape(), "selfsup_embed_microbatch_rows_count", series) || 0;
      const started = Date.now();
      const res = await embed({ input, encoding_format: "base64", precision, model });
      const ms = Date.now() - started;
      expect(res.status).toBe(200);
      const body = await res.json<EmbeddingsBody>();
      expect(body.data).toHaveLength(MAX_INPUTS);
      expect(body.data.every((d, i) => d.index === i)).toBe(true);
      // Spot-check against single-input requests.
      for (const i of [0, 7, 1000, MAX_INPUTS - 1]) {
        const alone = (await vectors({ input: input[i], precision, model }))[0] as number[];
        expect(cosine(alone, decodeBase64Floats(body.data[i]?.embedding as string))).toBeGreaterThanOrEqual(0.99999);
      }
      const m = await scrape();
      const runs = metricValue(m, "selfsup_embed_microbatch_rows_count", series) - before - 4;
      const peak = metricValue(m, "selfsup_wasm_memory_peak_bytes");
      const kernelBytes = metricValue(m, "selfsup_kernel_memory_bytes");
      const info = await (await api(`/v1/models/${model}/info`, { key })).json<{
        variants: Record<string, { microbatch_token_budget: number }>;
      }>();
      console.log(
        `${MAX_INPUTS} inputs (${model} ${precision}), ${body.usage.prompt_tokens} tokens in ${ms} ms, ${runs} runs; ` +
          `token budget per micro-batch ${info.variants[precision]?.microbatch_token_budget}; ` +
          `WASM peak ${(peak / 2 ** 20).toFixed(1)} MiB, kernels ${(kernelBytes / 2 ** 20).toFixed(1)} MiB`,
      );
      expect(runs).toBeGreaterThan(1);
      // fp32 is really batched; the kernel embeds one sequence per call, in slices of ~256 tokens
      // between yields; dynamic-int8 graphs run one input per ORT run (see sessions.ts).
      if (model === "tiny-ort") expect(runs).toBe(MAX_INPUTS);
      else if (precision === "int8") expect(runs).toBeLessThan(MAX_INPUTS / 4);
      else expect(runs).toBeLessThan(MAX_INPUTS / 8);
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(96 * 2 ** 20);
      if (model === MODEL && precision === "int8") {
        expect(kernelBytes).toBeGreaterThan(0);
        expect(kernelBytes).toBeLessThan(peak);
      }
    });
  }
});

describe("session cache", () => {
  it("serves repeat requests from the isolate's cache and evicts least recently used sessions over budget", async () => {
    await vectors({ input: "warm" });
    const m0 = await scrape();
    await vectors({ input: "hit" });
    const m1 = await scrape();
    expect(metricValue(m1, "selfsup_session_cache_hits_total")).toBeGreaterThan(
      metricValue(m0, "selfsup_session_cache_hits_total"),
    );
    expect(metricValue(m1, "selfsup_session_cache_misses_total")).toBe(
      metricValue(m0, "selfsup_session_cache_misses_total"),
    );
    await registerFixture(key, "tiny-evict");
    const previous = setSessionCacheBudget(1); // every new session evicts all others
    try {
      await vectors({ model: "tiny-evict", input: "evict" });
      const m2 = await scrape();
      expect(metricValue(m2, "selfsup_session_cache_evictions_total")).toBeGreaterThan(0);
      expect(metricValue(m2, "selfsup_session_cache_sessions")).toBe(1);
      await vectors({ input: "reload" }); // evicted: loaded again from R2
      const m3 = await scrape();
      expect(metricValue(m3, "selfsup_session_cache_misses_total")).toBe(
        metricValue(m2, "selfsup_session_cache_misses_total") + 1,
      );
    } finally {
      setSessionCacheBudget(previous);
    }
  });
});

describe("POST /v1/tokenize", () => {
  it("returns ids, tokens and offsets per input", async () => {
    const inputs = ["Call me Ishmael.", "Whale-ships, harpoons!"];
    const res = await api("/v1/tokenize", { method: "POST", key, json: { model: MODEL, inputs } });
    expect(res.status).toBe(200);
    const body = await res.json<{
      model: string;
      data: { ids: number[]; tokens: string[]; offsets: [number, number][]; details: { special: boolean }[] }[];
    }>();
    expect(body.model).toBe(`${MODEL}@1`);
    body.data.forEach((d, i) => {
      const text = inputs[i] as string;
      expect(d.ids).toHaveLength(d.tokens.length);
      expect(d.offsets).toHaveLength(d.ids.length);
      d.tokens.forEach((tok, k) => {
        if (d.details[k]?.special) return;
        const [s, e] = d.offsets[k] as [number, number];
        const piece = tok.replace(/^##/, "");
        if (tok !== "[UNK]") expect(text.slice(s, e).toLowerCase()).toBe(piece);
      });
    });
  });

  it("400 for an empty input, 404 for an unknown model", async () => {
    await expectProblem(await api("/v1/tokenize", { method: "POST", key, json: { model: MODEL, inputs: "" } }), 400);
    await expectProblem(await api("/v1/tokenize", { method: "POST", key, json: { model: "nope", inputs: "x" } }), 404);
  });
});

describe("GET /v1/models/{ref}/info", () => {
  it("describes the version a ref resolves to, with @ in the path", async () => {
    for (const ref of [MODEL, `${MODEL}@1`, `${MODEL}@latest`, `${MODEL}%40latest`]) {
      const res = await api(`/v1/models/${ref}/info`, { key });
      expect(res.status).toBe(200);
      const info = await res.json<Record<string, unknown>>();
      const m = fixtureManifest();
      expect(info).toMatchObject({
        model: `${MODEL}@1`,
        modality: "text",
        dims: m.dims,
        max_tokens: m.max_tokens,
        pooling: m.pooling,
        normalize: m.normalize,
        default_precision: "int8",
      });
      expect(info.precisions).toEqual(expect.arrayContaining(["fp32", "int8"]));
      expect(info.microbatch_token_budget).toBeGreaterThanOrEqual(m.max_tokens ?? 1);
    }
    // The existing /v1/models/{name} route is untouched.
    expect((await api(`/v1/models/${MODEL}`, { key })).status).toBe(200);
    await expectProblem(await api(`/v1/models/${MODEL}@7/info`, { key }), 404);
  });
});

describe("GET /metrics", () => {
  it("exposes Prometheus text with request, embedding, cache and WASM metrics", async () => {
    await embed({ input: "metrics please" });
    const text = await scrape();
    for (const name of [
      "selfsup_http_requests_total",
      "selfsup_http_errors_total",
      "selfsup_http_request_duration_seconds_bucket",
      "selfsup_embed_tokens_total",
      "selfsup_embed_microbatch_rows_bucket",
      "selfsup_embed_microbatch_tokens_bucket",
      "selfsup_session_cache_hits_total",
      "selfsup_session_cache_misses_total",
      "selfsup_model_load_seconds_count",
      "selfsup_wasm_memory_bytes",
      "selfsup_kernel_memory_bytes",
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/selfsup_http_requests_total\{[^}]*route="\/v1\/embeddings"[^}]*status="200"[^}]*\} \d+/);
    expect(text).toMatch(/selfsup_http_errors_total\{[^}]*route="\/v1\/embeddings"[^}]*status="400"[^}]*\} \d+/);
    expect(text).toContain("# TYPE selfsup_http_request_duration_seconds histogram");
  });

  it("needs an admin key", async () => {
    const embedOnly = await addKey(tenantId, ["embed"]);
    await expectProblem(await api("/metrics", { key: embedOnly.secret }), 403);
    await expectProblem(await api("/metrics"), 401);
  });
});
