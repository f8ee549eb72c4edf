// Backpressure on the encoder (issue 15): a bounded line per isolate (EMBED_MAX_QUEUE → 503) and a
// per-tenant token rate (EMBED_TENANT_TOKENS_PER_MINUTE → 429), both with Retry-After in the
// problem+json that also carries OpenAI's `error` member. The limits come from the env, so these
// tests hand createApp() the test env with tiny limits instead of going through SELF.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../api/app";
import { admit } from "../api/services/encoder/admission";
import { DEFAULT_MAX_QUEUE, DEFAULT_TENANT_TOKENS_PER_MINUTE, parseSettings } from "../api/settings";
import { registerFixture } from "./embeddings_fixture";
import { BASE, newTenant } from "./helpers";

const app = createApp();

const LONG = Array.from(
  { length: 24 },
  (_, i) =>
    `${i}: Some years ago, never mind how long precisely, having little or no money in my purse, I thought I would sail about.`,
);

async function embedWith(vars: Record<string, string>, key: string, model: string, input: unknown = LONG) {
  const ctx = createExecutionContext();
  const req = new Request(`${BASE}/v1/embeddings`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, input }),
  });
  const res = await app.fetch(req, { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

type Problem = { status: number; detail: string; error: { type: string; code: string; message: string } };

describe("settings", () => {
  it("EMBED_MAX_QUEUE and EMBED_TENANT_TOKENS_PER_MINUTE: defaults, 0 allowed, junk ignored", () => {
    expect(parseSettings({}).admission).toEqual({
      maxQueue: DEFAULT_MAX_QUEUE,
      tenantTokensPerMinute: DEFAULT_TENANT_TOKENS_PER_MINUTE,
    });
    expect(parseSettings({ EMBED_MAX_QUEUE: "0", EMBED_TENANT_TOKENS_PER_MINUTE: "0" }).admission).toEqual({
      maxQueue: 0,
      tenantTokensPerMinute: 0,
    });
    expect(parseSettings({ EMBED_MAX_QUEUE: "-3", EMBED_TENANT_TOKENS_PER_MINUTE: "lots" }).admission).toEqual({
      maxQueue: DEFAULT_MAX_QUEUE,
      tenantTokensPerMinute: DEFAULT_TENANT_TOKENS_PER_MINUTE,
    });
  });
});

describe("admission", () => {
  it("refuses past maxQueue waiting requests with a 503, and admits again once one leaves", () => {
    const limits = { maxQueue: 1, tenantTokensPerMinute: 0 };
    const a = admit("t1", limits);
    const b = admit("t1", limits);
    expect(() => admit("t1", limits)).toThrow(expect.objectContaining({ status: 503, code: "server_overloaded" }));
    a.release(0);
    let c: ReturnType<typeof admit> | undefined;
    expect(() => {
      c = admit("t2", limits);
    }).not.toThrow();
    b.release(0);
    c?.release(0);
  });

  it("a place never released (a cancelled request) stops counting after five minutes", () => {
    const limits = { maxQueue: 0, tenantTokensPerMinute: 0 };
    const lost = admit("t3", limits, Date.now() - 6 * 60_000);
    expect(() => admit("t3", limits).release(0)).not.toThrow();
    const held = admit("t3", limits);
    expect(() => admit("t3", limits)).toThrow(expect.objectContaining({ status: 503 }));
    held.release(0);
    lost.release(0);
  });

  it("a tenant in token debt gets a 429 whose Retry-After is the time to pay it back; others are not affected", () => {
    const limits = { maxQueue: 10, tenantTokensPerMinute: 600 }; // 10 tokens a second
    const t0 = Date.now();
    admit("rich", limits, t0).release(700); // 600 - 700 = -100 tokens
    try {
      admit("rich", limits, Date.now());
      expect.unreachable("the second request must be refused");
    } catch (e) {
      const err = e as { status: number; code: string; headers: Record<string, string> };
      expect(err.status).toBe(429);
      expect(err.code).toBe("rate_limit_exceeded");
      expect(Number(err.headers["retry-after"])).toBe(11);
      expect(Number(err.headers["retry-after-ms"])).toBeGreaterThan(10_000);
    }
    admit("other", limits).release(1);
    // 11 s later the debt is paid and the tenant is admitted again.
    admit("rich", limits, Date.now() + 11_000).release(0);
  });
});

describe("encoder backpressure over HTTP", () => {
  it("a full queue answers 503 with Retry-After in problem+json and OpenAI's error member", async () => {
    const { secret } = await newTenant(["admin"]);
    await registerFixture(secret, "bp");
    // Load the session first so every request below reaches the line at once.
    expect((await embedWith({}, secret, "bp", "warm")).status).toBe(200);
    // A tiny micro-batch budget makes every run yield (sessions.ts slices by budget), so the eight
    // requests overlap in the line instead of each finishing before the next is read.
    const vars = { EMBED_MAX_QUEUE: "1", EMBED_TENANT_TOKENS_PER_MINUTE: "0", EMBED_BATCH_TOKENS: "4" };
    const all = await Promise.all(Array.from({ length: 8 }, () => embedWith(vars, secret, "bp")));
    const statuses = all.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    const refused = all.filter((r) => r.status === 503);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const res of refused) {
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(res.headers.get("retry-after")).toMatch(/^[1-9][0-9]*$/);
      const p = (await res.json()) as Problem;
      expect(p.status).toBe(503);
      expect(p.detail).toMatch(/EMBED_MAX_QUEUE=1/);
      expect(p.error).toMatchObject({ type: "server_error", code: "server_overloaded" });
    }
    for (const res of all.filter((r) => r.status === 200)) await res.arrayBuffer();
    // The line drains: the next request is served.
    expect((await embedWith(vars, secret, "bp")).status).toBe(200);
  });

  it("a tenant over its token rate gets 429 with Retry-After; another tenant is still served", async () => {
    const { secret } = await newTenant(["admin"]);
    await registerFixture(secret, "rl");
    const vars = { EMBED_TENANT_TOKENS_PER_MINUTE: "60" };
    const first = await embedWith(vars, secret, "rl");
    expect(first.status).toBe(200);
    const used = ((await first.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    expect(used).toBeGreaterThan(60);
    const res = await embedWith(vars, secret, "rl", "Whale!");
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const p = (await res.json()) as Problem;
    expect(p.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect(p.detail).toMatch(/60 tokens per minute/);

    const other = await newTenant(["admin"]);
    await registerFixture(other.secret, "rl");
    expect((await embedWith(vars, other.secret, "rl", "Whale!")).status).toBe(200);
  });
});
