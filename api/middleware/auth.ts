import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { apiKeys, type Scope } from "../../db/schema";
import { sha256Hex, timingSafeEqualHex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { KEY_PREFIX_LENGTH, parseBearer } from "../lib/keys";
import type { AppEnv } from "../types";

const unauthorized = (detail: string) =>
  new ApiError(401, "unauthorized", detail, { headers: { "www-authenticate": 'Bearer realm="selfsup"' } });

/**
 * Authenticates the bearer key and requires `scope` (an `admin` key holds every scope). Every
 * handler behind it reads the tenant from `c.get("auth")` and scopes its queries to it.
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
    const row = await db.query.apiKeys.findFirst({
      where: and(eq(apiKeys.prefix, secret.slice(0, KEY_PREFIX_LENGTH)), isNull(apiKeys.revokedAt)),
    });
    const hash = await sha256Hex(secret);
    // Compare even when no row matched so unknown and wrong keys take the same time.
    const ok = timingSafeEqualHex(row?.hash ?? "0".repeat(64), hash) && row !== undefined;
    if (!ok || !row) throw unauthorized("The API key is unknown or has been revoked.");
    if (!row.scopes.includes(scope) && !row.scopes.includes("admin")) {
      throw new ApiError(
        403,
        "forbidden",
        `This key lacks the \`${scope}\` scope; create a key with it (POST /v1/keys).`,
      );
    }
    c.set("auth", { keyId: row.id, tenantId: row.tenantId, scopes: row.scopes });
    const touch = db.update(apiKeys).set({ lastUsedAt: Date.now() }).where(eq(apiKeys.id, row.id));
    c.executionCtx.waitUntil(touch.run().catch(() => {}));
    await next();
  });
