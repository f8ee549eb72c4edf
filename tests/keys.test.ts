import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { addKey, api, count, expectProblem, newTenant } from "./helpers";

describe("API keys", () => {
  it("creates a key whose secret is shown once and stored only as a hash", async () => {
    const { secret, tenantId } = await newTenant();
    const res = await api("/v1/keys", { method: "POST", key: secret, json: { name: "ci", scopes: ["embed"] } });
    expect(res.status).toBe(201);
    const key = await res.json<{ id: string; secret: string; prefix: string; scopes: string[] }>();
    expect(key.secret).toMatch(/^ss_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}$/);
    expect(key.secret.startsWith(key.prefix)).toBe(true);
    expect(key.scopes).toEqual(["embed"]);
    const row = await env.DB.prepare("select * from api_keys where id = ?")
      .bind(key.id)
      .first<Record<string, string>>();
    expect(row?.hash).toBe(await sha256Hex(key.secret));
    expect(JSON.stringify(row)).not.toContain(key.secret);
    expect(row?.tenant_id).toBe(tenantId);

    const list = await (await api("/v1/keys", { key: secret })).json<{ data: Record<string, unknown>[] }>();
    expect(list.data.map((k) => k.id)).toContain(key.id);
    expect(JSON.stringify(list)).not.toContain(key.secret);
    for (const k of list.data) expect(k).not.toHaveProperty("secret");

    // The new key works for its scope.
    expect((await api("/v1/models", { key: key.secret })).status).toBe(200);
  });

  it("401 without a key, with a malformed or unknown key, and with a revoked key", async () => {
    const { secret, tenantId } = await newTenant();
    await expectProblem(await api("/v1/keys"), 401);
    await expectProblem(await api("/v1/keys", { headers: { authorization: "Bearer nope" } }), 401);
    const unknown = `${secret.slice(0, 12)}${"x".repeat(32)}`;
    const p = await expectProblem(await api("/v1/keys", { key: unknown }), 401);
    expect(p.detail).toContain("revoked");

    const other = await addKey(tenantId, ["embed"]);
    const del = await api(`/v1/keys/${other.keyId}`, { method: "DELETE", key: secret });
    expect(del.status).toBe(200);
    expect((await del.json<{ revokedAt: string | null }>()).revokedAt).toBeTruthy();
    await expectProblem(await api("/v1/models", { key: other.secret }), 401);
  });

  it("403 when the key lacks the scope", async () => {
    const { secret, tenantId } = await newTenant(["embed"]);
    const p = await expectProblem(await api("/v1/keys", { key: secret }), 403);
    expect(p.detail).toContain("admin");
    const before = await count("api_keys", "tenant_id = ?", tenantId);
    await expectProblem(
      await api("/v1/keys", { method: "POST", key: secret, json: { name: "x", scopes: ["admin"] } }),
      403,
    );
    expect(await count("api_keys", "tenant_id = ?", tenantId)).toBe(before);
  });

  it("another tenant's key is a 404, and revoking it changes nothing", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await expectProblem(await api(`/v1/keys/${b.keyId}`, { method: "DELETE", key: a.secret }), 404);
    expect((await api("/v1/keys", { key: b.secret })).status).toBe(200);
    const list = await (await api("/v1/keys", { key: a.secret })).json<{ data: { id: string }[] }>();
    expect(list.data.map((k) => k.id)).not.toContain(b.keyId);
  });

  it("records when a key was last used", async () => {
    const { secret, keyId } = await newTenant();
    await api("/v1/keys", { key: secret });
    await new Promise((r) => setTimeout(r, 50));
    const row = await env.DB.prepare("select last_used_at from api_keys where id = ?")
      .bind(keyId)
      .first<{ last_used_at: number | null }>();
    expect(row?.last_used_at).toBeGreaterThan(0);
  });
});
