// Embedding services that need no ORT: micro-batch planning, the token budget, input checks, metrics.
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/lib/errors";
import { Counter, Histogram, metrics, renderMetrics } from "../api/lib/metrics";
import { MAX_BATCH_ROWS, planBatches, tokenBudget, WASM_PEAK_TARGET_BYTES } from "../api/services/encoder/batching";
import { MAX_INPUTS, MAX_REQUEST_TOKENS, prepareInputs } from "../api/services/encoder/inputs";

describe("planBatches", () => {
  it("keeps every batch's padded size (rows × longest) within the budget and covers each input once", () => {
    const lengths = Array.from({ length: 500 }, (_, i) => 3 + ((i * 37) % 126));
    const budget = 1024;
    const batches = planBatches(lengths, budget);
    const seen = batches.flat().sort((a, b) => a - b);
    expect(seen).toEqual(lengths.map((_, i) => i));
    for (const b of batches) {
      const width = Math.max(...b.map((i) => lengths[i] as number));
      expect(b.length * width).toBeLessThanOrEqual(budget);
      expect(b.length).toBeLessThanOrEqual(MAX_BATCH_ROWS);
    }
  });

  it("orders by length, longest first, so rows of similar length share a batch", () => {
    const lengths = [5, 120, 6, 118, 7, 119];
    expect(planBatches(lengths, 256)).toEqual([
      [1, 5],
      [3, 4],
      [2, 0],
    ]);
  });

  it("a sequence longer than the budget runs alone; maxRows caps rows", () => {
    expect(planBatches([600, 10], 256)).toEqual([[0], [1]]);
    expect(planBatches([4, 4, 4, 4, 4], 1000, 2)).toEqual([[0, 1], [2, 3], [4]]);
  });
});

describe("tokenBudget", () => {
  it("shrinks as models grow and never drops below one full-length sequence", () => {
    const tiny = tokenBudget({ dims: 128, maxTokens: 128, weightBytes: 2e6 });
    const mini = tokenBudget({ dims: 384, maxTokens: 256, weightBytes: 30e6 });
    const big = tokenBudget({ dims: 1024, maxTokens: 512, weightBytes: 300e6 });
    expect(tiny).toBeGreaterThan(mini);
    expect(mini).toBeGreaterThanOrEqual(256);
    expect(big).toBe(512);
    expect(tokenBudget({ dims: 128, maxTokens: 128, weightBytes: 0 }, 300)).toBe(300);
    expect(WASM_PEAK_TARGET_BYTES).toBe(96 * 2 ** 20);
  });
});

describe("prepareInputs", () => {
  const opts = { tokenizer: null, maxTokens: 1000, truncate: true, vocabSize: 50 };

  it(`413 once a request passes ${MAX_REQUEST_TOKENS} tokens, naming where`, () => {
    const seq = Array.from({ length: 1000 }, () => 7);
    const input = Array.from({ length: MAX_REQUEST_TOKENS / 1000 + 1 }, () => seq);
    try {
      prepareInputs(input, opts);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).status).toBe(413);
      expect((e as ApiError).message).toContain(`input[${MAX_REQUEST_TOKENS / 1000}]`);
    }
    expect(prepareInputs(input.slice(1), opts).promptTokens).toBe(MAX_REQUEST_TOKENS);
  });

  it("token ids are truncated to max_tokens, or 413 with truncate false", () => {
    const long = Array.from({ length: 1005 }, () => 1);
    expect(prepareInputs([long], opts).sequences[0]).toHaveLength(1000);
    expect(() => prepareInputs([long], { ...opts, truncate: false })).toThrow(/input\[0\]: is 1005 tokens/);
  });

  it("text needs a tokenizer; counts and empties are checked", () => {
    expect(() => prepareInputs("hello", opts)).toThrow(/token ids/);
    expect(() =>
      prepareInputs(
        Array.from({ length: MAX_INPUTS + 1 }, () => [1]),
        opts,
      ),
    ).toThrow(/at most 2048/);
    expect(() => prepareInputs([[1], []], opts)).toThrow(/input\[1\]/);
    expect(() => prepareInputs([1, 99], opts)).toThrow(/input\[1\]: token id 99/);
  });
});

describe("metrics", () => {
  it("renders counters and cumulative histograms in Prometheus text format", () => {
    const c = new Counter("t_total", "help");
    c.inc({ route: "/a", status: "200" });
    c.inc({ route: "/a", status: "200" }, 2);
    expect(c.lines("")).toEqual(['t_total{route="/a",status="200"} 3']);
    const h = new Histogram("t_seconds", "help", [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(h.lines("")).toEqual([
      't_seconds_bucket{le="0.1"} 1',
      't_seconds_bucket{le="1"} 2',
      't_seconds_bucket{le="+Inf"} 3',
      "t_seconds_sum{} 5.55",
      "t_seconds_count{} 3",
    ]);
    metrics.tokens.inc({ precision: "int8" }, 5);
    const text = renderMetrics();
    expect(text).toContain("# TYPE selfsup_embed_tokens_total counter");
    expect(text).toMatch(/selfsup_embed_tokens_total\{isolate="[a-z0-9]+",precision="int8"\} \d+/);
  });
});
