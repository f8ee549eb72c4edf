// The fixture encoder through onnxruntime-node (native) and the edge tokenizer, held to the
// trainer's Python onnxruntime references. The Worker's own output is compared with this native
// path in tests/e2e/openai_sdk.test.ts (through wrangler dev) and with the Python references in
// tests/embeddings.test.ts (inside workerd).
import { describe, expect, it } from "vitest";
import { cosine, fixtureJson, nativeEncoder, referenceCases } from "./native";

describe("native onnxruntime-node parity (fixture encoder)", () => {
  it("the edge tokenizer gives the Python ids, and native fp32/int8 match Python onnxruntime", async () => {
    const fp32 = await nativeEncoder("fp32");
    const int8 = await nativeEncoder("int8");
    const cases = referenceCases();
    let min32 = 1;
    let min8 = 1;
    let min8vs32 = 1;
    for (const c of cases) {
      const ids = fp32.tokenizer.encode(c.text).ids;
      expect(ids).toEqual(c.ids);
      const [v32] = await fp32.embed([ids]);
      const [v8] = await int8.embed([ids]);
      min32 = Math.min(min32, cosine(v32 as Float32Array, c.fp32));
      min8 = Math.min(min8, cosine(v8 as Float32Array, c.int8));
      min8vs32 = Math.min(min8vs32, cosine(v8 as Float32Array, v32 as Float32Array));
    }
    console.log(
      `native vs python: fp32 min ${min32.toFixed(9)}, int8 min ${min8.toFixed(9)}; int8 vs fp32 min ${min8vs32.toFixed(5)}`,
    );
    expect(min32).toBeGreaterThanOrEqual(0.99999);
    expect(min8).toBeGreaterThanOrEqual(0.999);
    expect(min8vs32).toBeGreaterThanOrEqual(0.99);
  });

  it("tokenizer_cases.json: every case, truncation included", async () => {
    const { tokenizer } = await nativeEncoder("int8");
    const cases = fixtureJson<{ text: string; ids: number[] }[]>("tokenizer_cases.json");
    for (const c of cases) expect(tokenizer.encode(c.text).ids, c.text.slice(0, 40)).toEqual(c.ids);
  });
});
