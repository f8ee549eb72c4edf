import { env, SELF } from "cloudflare:test";
import { newId } from "../api/lib/crypto";
import { generateApiKey } from "../api/lib/keys";
import type { Scope } from "../db/schema";

export const BASE = "http://selfsup.test";

/** A fresh tenant with one key holding `scopes`; every test gets its own so they cannot collide. */
export async function newTenant(scopes: Scope[] = ["admin"]) {
  const tenantId = newId("tnt");
  await env.DB.prepare("insert into tenants (id, name) values (?, ?)").bind(tenantId, `test ${tenantId}`).run();
  const key = await addKey(tenantId, scopes);
  return { tenantId, ...key };
}

export async function addKey(tenantId: string, scopes: Scope[]) {
  const { secret, prefix, hash } = await generateApiKey();
  const keyId = newId("key");
  await env.DB.prepare("insert into api_keys (id, tenant_id, name, prefix, hash, scopes) values (?, ?, ?, ?, ?, ?)")
    .bind(keyId, tenantId, "test", prefix, hash, JSON.stringify(scopes))
    .run();
  return { keyId, secret };
}

export function api(path: string, init: RequestInit & { key?: string; json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  }
  return SELF.fetch(`${BASE}${path}`, { ...init, headers, body });
}

export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  requestId: string;
  errors?: { path: string; message: string }[];
};

export async function expectProblem(res: Response, status: number): Promise<Problem> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  if (!res.headers.get("content-type")?.startsWith("application/problem+json")) {
    throw new Error(`expected application/problem+json, got ${res.headers.get("content-type")}: ${text}`);
  }
  const p = JSON.parse(text) as Problem;
  if (p.status !== status || !p.requestId || !p.detail || !p.title || !p.type)
    throw new Error(`incomplete problem: ${text}`);
  return p;
}

export async function count(table: string, where = "1=1", ...args: unknown[]) {
  const row = await env.DB.prepare(`select count(*) as n from ${table} where ${where}`)
    .bind(...args)
    .first<{ n: number }>();
  return row?.n ?? 0;
}
