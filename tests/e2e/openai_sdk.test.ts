// The official `openai` npm SDK, unchanged, against a real `wrangler dev` serving the fixture
// encoder; the Worker's embeddings are also held to onnxruntime-node (native) on the same inputs.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cosine, FIXTURE_DIR, nativeEncoder } from "../node/native";
import { type DevServer, registerFolder, startWranglerDev } from "./wrangler_dev";

const TEXTS = [
  "Call me Ishmael.",
  "Some years ago—never mind how long precisely—having little or no money in my purse, and nothing particular to interest me on shore.",
  "Whale!",
  "There now is your insular city of the Manhattoes, belted round by wharves as Indian isles by coral reefs.",
];

let server: DevServer;
let client: OpenAI;
/** What the SDK put on the wire, to check which encoding it asked for. */
const sent: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = await startWranglerDev();
  await registerFolder(server, "tiny", FIXTURE_DIR);
  client = new OpenAI({
    apiKey: server.key,
    baseURL: `${server.url}/v1`,
    maxRetries: 0,
    timeout: 120_000,
    fetch: async (url: RequestInfo | URL, init?: RequestInit) => {
      if (typeof init?.body === "string") sent.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

describe("openai SDK against wrangler dev", () => {
  it("embeddings.create with the SDK's default encoding (base64 on the wire, decoded by the SDK)", async () => {
    const res = await client.embeddings.create({ model: "tiny", input: TEXTS });
    expect(sent.at(-1)?.encoding_format).toBe("base64");
    expect(res.object).toBe("list");
    expect(res.model).toBe("tiny@1");
    expect(res.data).toHaveLength(TEXTS.length);
    expect(res.usage.prompt_tokens).toBeGreaterThan(TEXTS.length);
    expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens);
    for (const [i, d] of res.data.entries()) {
      expect(d.object).toBe("embedding");
      expect(d.index).toBe(i);
      expect(Array.isArray(d.embedding)).toBe(true);
      expect(d.embedding).toHaveLength(128);
    }
  });

  it("float and explicit base64 encodings carry the same vectors", async () => {
    const floats = await client.embeddings.create({ model: "tiny", input: TEXTS, encoding_format: "float" });
    expect(sent.at(-1)?.encoding_format).toBe("float");
    const b64 = await client.embeddings.create({ model: "tiny@latest", input: TEXTS, encoding_format: "base64" });
    for (const [i, d] of b64.data.entries()) {
      expect(typeof d.embedding).toBe("string");
      const buf = Buffer.from(d.embedding as unknown as string, "base64");
      const decoded = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      expect(Array.from(decoded)).toEqual(((floats.data[i]?.embedding ?? []) as number[]).map(Math.fround));
    }
    const one = await client.embeddings.create({ model: "tiny@1", input: TEXTS[0] as string, user: "sdk-test" });
    expect(one.data).toHaveLength(1);
  });

  it("the Worker (ORT-web fp32, our int8 kernel) matches onnxruntime-node on the same inputs", async () => {
    for (const precision of ["fp32", "int8"] as const) {
      const native = await nativeEncoder(precision);
      const seqs = TEXTS.map((t) => native.tokenizer.encode(t).ids);
      const expected: Float32Array[] = [];
      for (const s of seqs) expected.push(...(await native.embed([s])));
      const res = await fetch(`${server.url}/v1/embeddings`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", input: TEXTS, precision }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: { embedding: number[] }[] };
      const cos = body.data.map((d, i) => cosine(d.embedding, expected[i] as Float32Array));
      console.log(`worker vs onnxruntime-node ${precision}: min cosine ${Math.min(...cos).toFixed(9)}`);
      // fp32 is the same graph in both runtimes; int8 is our kernel (per-row 7-bit activations)
      // against ORT's dynamic int8 graph: two quantizations of one encoder.
      expect(Math.min(...cos)).toBeGreaterThanOrEqual(precision === "fp32" ? 0.99999 : 0.999);
      if (precision === "int8") {
        const fp32 = await nativeEncoder("fp32");
        const ref: Float32Array[] = [];
        for (const s of seqs) ref.push(...(await fp32.embed([s])));
        const c8 = body.data.map((d, i) => cosine(d.embedding, ref[i] as Float32Array));
        expect(Math.min(...c8)).toBeGreaterThanOrEqual(0.99);
      }
    }
  });

  it("SDK errors carry the API's message, type, code and param (OpenAI's `error` member)", async () => {
    // Without `error.message` the SDK's exception says only "404 status code (no body)" or a JSON dump.
    await expect(client.embeddings.create({ model: "no-such-model", input: "x" })).rejects.toMatchObject({
      status: 404,
      message: expect.stringMatching(/^404 .*no-such-model/),
      type: "invalid_request_error",
      code: "not_found",
    });
    await expect(client.embeddings.create({ model: "tiny", input: "" })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/^400 input.*must not be empty/),
      param: expect.stringMatching(/^input/),
    });
    await expect(
      client.embeddings.create({ model: "tiny", input: "x", encoding_format: "bogus" as "float" }),
    ).rejects.toMatchObject({
      status: 400,
      param: "encoding_format",
      message: expect.stringContaining("encoding_format"),
    });
    const bad = new OpenAI({ apiKey: "ss_nope", baseURL: `${server.url}/v1`, maxRetries: 0 });
    await expect(bad.embeddings.create({ model: "tiny", input: "x" })).rejects.toMatchObject({
      status: 401,
      message: expect.stringMatching(/^401 .*key/i),
      type: "authentication_error",
    });
    // A route that does not exist (the SDK's generic request) still names itself.
    await expect(client.get("/nope")).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining("/v1/nope"),
    });
  });
});

describe("openai SDK retries on our 429 (per-tenant token rate, EMBED_TENANT_TOKENS_PER_MINUTE)", () => {
  let limited: DevServer;
  const statuses: number[] = [];

  beforeAll(async () => {
    // 600 tokens a minute = 10 a second: a few requests put the tenant in debt for a few seconds.
    limited = await startWranglerDev({ EMBED_TENANT_TOKENS_PER_MINUTE: "600" });
    await registerFolder(limited, "tiny", FIXTURE_DIR);
  });

  afterAll(async () => {
    await limited?.stop();
  });

  it("a 429 carries Retry-After and OpenAI's error member, and the SDK's retry then succeeds", async () => {
    const raw = () =>
      fetch(`${limited.url}/v1/embeddings`, {
        method: "POST",
        headers: { authorization: `Bearer ${limited.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", input: TEXTS }),
      });
    let refused: Response | undefined;
    let problem: { error?: { type: string; code: string } } = {};
    for (let i = 0; i < 40 && !refused; i++) {
      const res = await raw();
      if (res.status === 429) {
        refused = res;
        problem = (await res.json()) as typeof problem;
      } else {
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    }
    expect(refused, "the tenant never went over 600 tokens a minute").toBeDefined();
    expect(refused?.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(problem.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    const retryAfter = Number(refused?.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    const sdk = new OpenAI({
      apiKey: limited.key,
      baseURL: `${limited.url}/v1`,
      maxRetries: 3,
      timeout: 120_000,
      fetch: async (url: RequestInfo | URL, init?: RequestInit) => {
        const res = await fetch(url, init);
        statuses.push(res.status);
        return res;
      },
    });
    // Still in debt: the first try is refused, the SDK waits Retry-After and tries again.
    const started = Date.now();
    const res = await sdk.embeddings.create({ model: "tiny", input: "Call me Ishmael." });
    expect(res.data).toHaveLength(1);
    expect(statuses[0]).toBe(429);
    expect(statuses.at(-1)).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
  });
});
