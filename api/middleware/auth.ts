import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { apiKeys, type Scope } from "../../db/schema";
import { sha256Hex, timingSafeEqualHex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { KEY_PREFIX_LENGTH, parseBearer } from "../lib/keys";
import { TtlCache } from "../services/cache";
import type { AppEnv, AuthContext } from "../types";

/** A revoked key keeps working in another isolate for at most this long (in this one: not at all). */
export const KEY_TTL_MS = 30_000;
/** `lastUsedAt` is written at most once per key per isolate in this window. */
export const LAST_USED_WRITE_MS = 60_000;

// By the key's SHA-256, never the secret: a heap dump of the isolate holds no usable key.
const keys = new TtlCache<string, AuthContext>(KEY_TTL_MS, 10_000);
const touched = new TtlCache<string, true>(LAST_USED_WRITE_MS, 10_000);
const revoked = new TtlCache<string, true>(KEY_TTL_MS, 10_000);

/** Forgets a key in this isolate at once (DELETE /v1/keys/{id} calls it through app.ts). */
export function forgetKey(keyId: string) {
  keys.deleteWhere((_, v) => v.keyId === keyId);
  touched.delete(keyId);
  // A request that read the key's row before the revoke committed must not cache it afterwards.
  revoked.set(keyId, true);
}

const unauthorized = (detail: string) =>
  new ApiError(401, "unauthorized", detail, { headers: { "www-authenticate": 'Bearer realm="selfsup"' } });

/**
 * Authenticates the bearer key and requires `scope` (an `admin` key holds every scope). Every
 * handler behind it reads the tenant from `c.get("auth")` and scopes its queries to it. A key seen
 * in the last KEY_TTL_MS is served from this isolate's cache without a D1 read.
 */
export const requireScope = (scope: Scope) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const secret = parseBearer(c.req.header("authorization"));
    if (!secret) {
      throw unauthorized(
        "Send an API key as `Authorization: Bearer ss_...`; `make dev` prints one and `POST /v1/keys` creates more.",
      );
    }
    const { db } = c.get("services");
    const hash = await sha256Hex(secret);
    let auth = keys.get(hash);
    if (!auth) {
      const row = await db.query.apiKeys.findFirst({
        where: and(eq(apiKeys.prefix, secret.slice(0, KEY_PREFIX_LENGTH)), isNull(apiKeys.revokedAt)),
      });
      // Compare even when no row matched so unknown and wrong keys take the same time.
      const ok = timingSafeEqualHex(row?.hash ?? "0".repeat(64), hash) && row !== undefined;
      if (!ok || !row || revoked.get(row.id)) throw unauthorized("The API key is unknown or has been revoked.");
      auth = { keyId: row.id, tenantId: row.tenantId, scopes: row.scopes };
      keys.set(hash, auth);
    }
    if (!auth.scopes.includes(scope) && !auth.scopes.includes("admin")) {
      throw new ApiError(
        403,
        "forbidden",
        `This key lacks the \`${scope}\` scope; create a key with it (POST /v1/keys).`,
      );
    }
    c.set("auth", auth);
    if (!touched.get(auth.keyId)) {
      touched.set(auth.keyId, true);
      const touch = db.update(apiKeys).set({ lastUsedAt: Date.now() }).where(eq(apiKeys.id, auth.keyId));
      c.executionCtx.waitUntil(touch.run().catch(() => {}));
    }
    await next();
  });
