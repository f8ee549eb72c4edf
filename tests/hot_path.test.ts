// The embeddings hot path (issue 15): per-isolate TTL caches for keys and model refs, the one-query
// resolveVersion, the throttled lastUsedAt write and the TEI-like timing headers. D1 reads are
// counted on a wrapped DB binding handed to the app directly (createApp().fetch with our env).
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../api/app";
import { TtlCache } from "../api/services/cache";
import { registerFixture } from "./embeddings_fixture";
import { addKey, api, BASE, expectProblem, newTenant } from "./helpers";

const app = createApp();

/** The DB binding with every statement's SQL recorded in `log` (prepare and batch are the only ways in). */
function countingD1(db: D1Database, log: string[]): D1Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") {
        return (sql: string) => {
          log.push(sql);
          return target.prepare(sql);
        };
      }
      if (prop === "exec") {
        return (sql: string) => {
          log.push(sql);
          return target.exec(sql);
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** One request through `createApp()` with `DB` wrapped; waits for its waitUntil work too. */
async function direct(path: string, key: string, json: unknown, log: string[]) {
  const ctx = createExecutionContext();
  const req = new Request(`${BASE}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(json),
  });
  const res = await app.fetch(req, { ...env, DB: countingD1(env.DB, log) }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const embed = (key: string, model: string, input: unknown = "Call me Ishmael.") =>
  api("/v1/embeddings", { method: "POST", key, json: { model, input } });

async function servedRef(key: string, model: string): Promise<string> {
  const res = await embed(key, model);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${text}`);
  return (JSON.parse(text) as { model: string }).model;
}

describe("TtlCache", () => {
  it("serves an entry until its TTL, then forgets it", () => {
    let now = 1_000;
    const c = new TtlCache<string, number>(100, 10, () => now);
    c.set("a", 1);
    c.set("b", 2, 500);
    now += 99;
    expect(c.get("a")).toBe(1);
    now += 1;
    expect(c.get("a")).toBeUndefined();
    expect(c.get("b")).toBe(2);
    now += 400;
    expect(c.get("b")).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it("drops the oldest past maxEntries, and deletes by key or by predicate", () => {
    const c = new TtlCache<string, { id: string }>(60_000, 2);
    c.set("x", { id: "1" });
    c.set("y", { id: "2" });
    c.set("z", { id: "2" });
    expect(c.get("x")).toBeUndefined();
    expect(c.deleteWhere((_, v) => v.id === "2")).toBe(2);
    expect(c.size).toBe(0);
    c.set("x", { id: "1" });
    expect(c.delete("x")).toBe(true);
    expect(c.get("x")).toBeUndefined();
  });

  it("refuses a TTL or size that cannot work, naming it", () => {
    expect(() => new TtlCache(0)).toThrow(/ttlMs must be > 0, got 0/);
    expect(() => new TtlCache(10, 0)).toThrow(/maxEntries must be >= 1, got 0/);
  });
});

describe("hot path caches", () => {
  it("a cached alias sees an alias move made in this isolate, and `latest` a new version", async () => {
    const { secret } = await newTenant(["admin"]);
    await registerFixture(secret, "hot");
    const put = (alias: string, version: number) =>
      api(`/v1/models/hot/aliases/${alias}`, { method: "PUT", key: secret, json: { version } });
    expect((await put("production", 1)).status).toBe(200);
    expect(await servedRef(secret, "hot@production")).toBe("hot@1");
    expect(await servedRef(secret, "hot")).toBe("hot@1");
    // Both refs are cached now; a second version moves `latest`, and the PUT moves `production`.
    await registerFixture(secret, "hot");
    expect(await servedRef(secret, "hot")).toBe("hot@2");
    expect(await servedRef(secret, "hot@production")).toBe("hot@1");
    expect((await put("production", 2)).status).toBe(200);
    expect(await servedRef(secret, "hot@production")).toBe("hot@2");
    expect((await put("production", 1)).status).toBe(200);
    expect(await servedRef(secret, "hot@production")).toBe("hot@1");
    // Unknown refs are still told apart: no model, and no such version or alias.
    expect((await expectProblem(await embed(secret, "nope"), 404)).detail).toMatch(/No model named `nope`/);
    expect((await expectProblem(await embed(secret, "hot@7"), 404)).detail).toMatch(/has no version `hot@7`/);
    expect((await expectProblem(await embed(secret, "hot@canary"), 404)).detail).toMatch(/no version `hot@canary`/);
  });

  it("a key revoked through DELETE /v1/keys/{id} is refused at once, though it was cached", async () => {
    const { secret, tenantId } = await newTenant(["admin"]);
    await registerFixture(secret, "rev");
    const user = await addKey(tenantId, ["embed"]);
    expect(await servedRef(user.secret, "rev")).toBe("rev@1");
    expect(await servedRef(user.secret, "rev")).toBe("rev@1");
    expect((await api(`/v1/keys/${user.keyId}`, { method: "DELETE", key: secret })).status).toBe(200);
    const p = await expectProblem(await embed(user.secret, "rev"), 401);
    expect(p.detail).toMatch(/revoked/);
    // A cached key still meets the scope check: an embed-only key cannot list keys.
    const embedOnly = await addKey(tenantId, ["embed"]);
    expect(await servedRef(embedOnly.secret, "rev")).toBe("rev@1");
    await expectProblem(await api("/v1/keys", { key: embedOnly.secret }), 403);
  });

  it("after warm-up an embeddings call reads nothing from D1 (key, version, lastUsedAt all cached)", async () => {
    const { secret: admin, tenantId } = await newTenant(["admin"]);
    await registerFixture(admin, "warm");
    // A key this isolate has not seen yet (the admin key is cached by the import above).
    const { secret } = await addKey(tenantId, ["embed"]);
    const body = { model: "warm@latest", input: ["Call me Ishmael.", "Whale!"] };
    const cold: string[] = [];
    const first = await direct("/v1/embeddings", secret, body, cold);
    expect(first.status).toBe(200);
    // Cold: the key, then the ref in one query (models ⟕ aliases ⟕ versions), then lastUsedAt.
    expect(cold.filter((s) => /from "api_keys"/.test(s))).toHaveLength(1);
    const refReads = cold.filter((s) => /from "models"/.test(s));
    expect(refReads).toHaveLength(1);
    expect(refReads[0]).toMatch(/left join "model_aliases".*left join "model_versions"/);
    expect(cold.filter((s) => /^update "api_keys"/.test(s))).toHaveLength(1);

    const warm: string[] = [];
    const res = await direct("/v1/embeddings", secret, body, warm);
    expect(res.status).toBe(200);
    expect(warm).toEqual([]);
    const pinned: string[] = [];
    expect((await direct("/v1/embeddings", secret, { ...body, model: "warm@1" }, pinned)).status).toBe(200);
    // A version by number is one read the first time (then cached), never the key again.
    expect(pinned.filter((s) => /from "api_keys"/.test(s))).toEqual([]);
    expect(pinned).toHaveLength(1);
  });

  it("answers carry x-compute-time, x-queue-time and x-inference-time (ms)", async () => {
    const { secret } = await newTenant(["admin"]);
    await registerFixture(secret, "timed");
    const res = await embed(secret, "timed", ["Call me Ishmael.", "Whale!"]);
    expect(res.status).toBe(200);
    const ms = (h: string) => Number(res.headers.get(h));
    for (const h of ["x-compute-time", "x-queue-time", "x-inference-time"]) {
      expect(res.headers.get(h), h).toMatch(/^[0-9]+$/);
    }
    expect(ms("x-compute-time")).toBeGreaterThanOrEqual(ms("x-inference-time"));
    expect(ms("x-compute-time")).toBeGreaterThanOrEqual(ms("x-queue-time"));
  });
});
