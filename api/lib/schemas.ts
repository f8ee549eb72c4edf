import { z } from "@hono/zod-openapi";
import { SCOPES } from "../../db/schema";

export const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

export const Timestamp = z.string().openapi({ example: "2026-11-27T21:00:00.000Z" });
export const ScopeSchema = z.enum(SCOPES);

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: "key_mi1x2y3zAbCdEfGhIjKl" }),
    name: z.string().openapi({ example: "ci" }),
    prefix: z.string().openapi({ example: "ss_Ab3dE9xQ", description: "First characters of the secret." }),
    scopes: z.array(ScopeSchema).openapi({ example: ["embed"] }),
    createdAt: Timestamp,
    lastUsedAt: Timestamp.nullable(),
    revokedAt: Timestamp.nullable(),
  })
  .openapi("ApiKey");

export const keyView = (k: {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes as z.infer<typeof ScopeSchema>[],
  createdAt: iso(k.createdAt) as string,
  lastUsedAt: iso(k.lastUsedAt),
  revokedAt: iso(k.revokedAt),
});

/** Model names: lowercase, digits, `-`, `_`, `.`; they appear in refs like `name@3`. */
export const ModelName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,63}$/,
    "use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
  )
  .openapi({ example: "demo" });

export const AliasName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, "use 1-32 lowercase letters, digits, '_' or '-', starting with a letter")
  .openapi({ example: "production" });
